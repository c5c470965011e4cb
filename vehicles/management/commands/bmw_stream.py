"""BMW CarData's MQTT stream turned into samples: an optional long-running process (see the Procfile).

One MQTT connection per BMW account (username gcid, password id_token, topic `{gcid}/{vin}` per car,
keep-alive 30 s), as CarData allows. A message carries only the keys that changed, each with its own time;
the consumer keeps the latest of each key per car, so that every sample it writes is whole, stamped with the
newest key's time, and written through the same service as polls (one row per maker timestamp).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections

from vehicles import models as m
from vehicles import services
from vehicles.providers import bmw

log = logging.getLogger("vehicles.bmw_stream")
KEEPALIVE = 30  # seconds; CarData drops connections quiet for longer


def _stamp(entry: Any) -> str:
    return (entry.get("timestamp") or "") if isinstance(entry, dict) else ""


@dataclass
class AccountStream:
    """One account's stream: its topics, and how a message becomes a sample of one of its cars."""

    account_id: int
    gcid: str
    vehicles: dict[str, int]  # VIN -> our vehicle id
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # VIN -> key -> {value, unit, timestamp}

    @property
    def topics(self) -> list[str]:
        return [f"{self.gcid}/{vin}" for vin in sorted(self.vehicles)]

    def merge(self, vin: str, data: dict[str, Any]) -> dict[str, Any]:
        known = self.latest.setdefault(vin, {})
        for key, entry in data.items():
            if key in bmw.KEYS and (key not in known or _stamp(entry) >= _stamp(known[key])):
                known[key] = entry  # a late message never undoes a newer value
        return known

    def handle(self, topic: str, payload: bytes) -> services.SampleResult | None:
        """One message; None when it says nothing we keep (another car, other keys, not JSON)."""
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("bmw_stream: a message on %s that is not JSON", topic)
            return None
        if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
            return None
        vin = message.get("vin") or topic.rsplit("/", 1)[-1]
        vehicle_id = self.vehicles.get(vin)
        if vehicle_id is None:
            return None
        snapshot = bmw.snapshot(self.merge(vin, message["data"]), received_at=datetime.now(UTC))
        if snapshot is None:
            return None
        _fill_from_state(snapshot, vehicle_id)
        return services.vehicle_samples_upsert(items=[(vehicle_id, snapshot)], source=m.SampleSource.STREAM)[0]


def _fill_from_state(snapshot, vehicle_id: int) -> None:
    """What the stream has not said since we started is what we last knew, not unknown."""
    state = m.VehicleState.objects.filter(vehicle_id=vehicle_id).first()
    if state is None:
        return
    for name in ("soc", "range_km", "plugged", "latitude", "longitude", "odometer_km", "charging_power_kw"):
        if getattr(snapshot, name) is None:
            setattr(snapshot, name, getattr(state, name))
    if snapshot.charging_state == "UNKNOWN":
        snapshot.charging_state = state.charging_state


def account_streams() -> list[tuple[AccountStream, str]]:
    """Each active BMW account with cars, and its MQTT password (the id_token)."""
    out = []
    for account in m.MakerAccount.objects.filter(provider=m.Provider.BMW, status=m.AccountStatus.ACTIVE):
        tokens = services.maker_account_tokens(account=account)
        gcid, id_token = tokens.extra.get("gcid") or account.external_id, tokens.extra.get("id_token", "")
        vins = dict(m.Vehicle.objects.filter(account=account).values_list("vin", "pk"))
        if gcid and id_token and vins:
            out.append((AccountStream(account_id=account.pk, gcid=gcid, vehicles=vins), id_token))
    return out


def _fresh_tokens(account_id: int) -> None:
    """Refresh the account's tokens through the sync engine (its lock: one refresh at a time per account)."""
    from vehicles import sync

    account = m.MakerAccount.objects.get(pk=account_id)
    sync._account_run(account, lambda run: run.ensure_fresh())


class Command(BaseCommand):
    help = "Stream BMW CarData over MQTT into samples (optional; costs none of CarData's 50 REST calls a day)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=bmw.STREAM_HOST)
        parser.add_argument("--port", type=int, default=bmw.STREAM_PORT)
        parser.add_argument("--no-tls", action="store_true", help="plain MQTT (a local test broker)")
        parser.add_argument("--reload", type=float, default=300.0,
                            help="seconds between two looks at the accounts, their cars and tokens")

    def handle(self, *args, **opts):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.serve(stop, opts)

    def serve(self, stop: threading.Event, opts: dict[str, Any]) -> None:
        """Until `stop`: every `reload` seconds, fresh tokens, and one connection per account with cars."""
        import paho.mqtt.client as mqtt

        clients: dict[int, tuple[Any, AccountStream, str]] = {}
        while not stop.is_set():
            close_old_connections()
            linked = m.MakerAccount.objects.filter(provider=m.Provider.BMW, status=m.AccountStatus.ACTIVE)
            for account_id in linked.values_list("pk", flat=True):
                try:
                    _fresh_tokens(account_id)
                except Exception as exc:  # noqa: BLE001 - the account is marked by the engine; keep the others
                    log.warning("bmw_stream: account %s: no fresh token: %s", account_id, exc)
            wanted = {stream.account_id: (stream, token) for stream, token in account_streams()}
            for account_id in list(clients):
                client, stream, token = clients[account_id]
                new = wanted.get(account_id)
                if new is None or new[1] != token or new[0].topics != stream.topics:
                    client.disconnect()
                    client.loop_stop()
                    del clients[account_id]
            for account_id, (stream, token) in wanted.items():
                if account_id not in clients:
                    clients[account_id] = (self._connect(mqtt, stream, token, opts), stream, token)
            stop.wait(opts["reload"])
        for client, _, _ in clients.values():
            client.disconnect()
            client.loop_stop()
        connections.close_all()

    def _connect(self, mqtt, stream: AccountStream, id_token: str, opts):
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                             client_id=f"evhub-{stream.gcid}-{int(time.time())}")
        client.username_pw_set(stream.gcid, id_token)
        if not opts["no_tls"]:
            client.tls_set()

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                log.warning("bmw_stream: %s refused: %s", stream.gcid, reason_code)
                return
            for topic in stream.topics:
                client.subscribe(topic, qos=1)

        def on_message(client, userdata, message):
            try:
                stream.handle(message.topic, message.payload)
            except Exception:  # noqa: BLE001 - one bad message must not end the account's stream
                log.exception("bmw_stream: a message on %s was not stored", message.topic)
            finally:
                close_old_connections()

        def on_disconnect(client, userdata, flags, reason_code, properties):
            # The network thread may end here: its database connection goes with it.
            connections.close_all()

        client.on_connect, client.on_message, client.on_disconnect = on_connect, on_message, on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=120)
        client.connect_async(opts["host"], opts["port"], keepalive=KEEPALIVE)
        client.loop_start()
        return client
