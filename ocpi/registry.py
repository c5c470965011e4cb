"""The registry of OCPI modules that ride the outbox (push) and the pull: what `ocpi.outbox` and `ocpi.pull`
know of a module, so that neither knows any module's objects.

A module registers itself once, at import, from `ocpi/modules/<name>/push.py` (every such file is imported
by `ocpi.apps` at start-up, so a new module needs no line anywhere else):

    from ocpi.registry import Module, register

    register(Module(
        identifier="hubclientinfo",            # OCPI's module identifier; OutboxEntry.module
        receiver_url=receiver_url,             # (peer) -> str | None: where to push; None: the peer receives none
        load=load,                             # (entries, peer) -> {object_pk: obj}: the objects as they are now
        send=send,                             # (client, url, entry, obj, peer) -> str: "" when accepted
    ))

and announces its changes with `ocpi.outbox.outbox_announce(module=..., keys=[(country_code, party_id,
object_id, object_pk), ...])` (inside the transaction that makes the change, or not): one entry per
connected peer whose `receiver_url` is set, delivered after the commit.

- `load(entries, peer)` gets one OutboxEntry per object (its oldest pending one) and returns the objects
  keyed by `entry.object_pk`, or by `ocpi.outbox.entry_key(entry)` ((country_code, party_id, object_id)) for
  entries announced with `object_pk=None`. An object missing from the answer (deleted since) is not sent: its entries are
  marked delivered with "deleted: not sent".
- `send(client, url, entry, obj, peer)` maps the object to OCPI JSON and calls the peer (usually through
  `ocpi.outbox.object_put(client, target, data)`, which classifies the answer). It returns "" when the
  peer accepted it, an `ocpi.outbox.Refused` (a str) when the peer refused it for good (HTTP 4xx other
  than 401/408/429, or an OCPI 2xxx: the entries are parked with that reason and the peer's other objects
  flow on), or any other non-empty str for a transient failure (the peer's delivery backs off and stops).
  The target is the module's (`{url}/{country_code}/{party_id}/{object_id}` for object modules).
- Pull (optional): `sender_url(peer) -> str | None` and `pull_writer(peer) -> writer` (with `start()`,
  `add(items)`, `flush()`, `close(raising=True)` and a `tally` of `ocpi.pull_writer.Tally`), used by
  `ocpi.pull.peer_pull(peer=..., module=...)` to page through the peer's sender.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

_MODULES: dict[str, "Module"] = {}


@dataclass(frozen=True)
class Module:
    identifier: str
    receiver_url: Callable[[Any], str | None]
    load: Callable[[list, Any], dict]
    send: Callable[[Any, str, Any, Any, Any], str]
    sender_url: Callable[[Any], str | None] | None = None
    pull_writer: Callable[[Any], Any] | None = None


def register(module: Module) -> Module:
    """Register (or, on a reload, replace) a module under its identifier."""
    _MODULES[module.identifier] = module
    return module


def module_get(identifier: str) -> Module | None:
    _autodiscover()
    return _MODULES.get(identifier)


def modules() -> list[Module]:
    _autodiscover()
    return list(_MODULES.values())


def pull_modules() -> list[Module]:
    return [module for module in modules() if module.sender_url and module.pull_writer]


_discovered = False


def _autodiscover() -> None:
    """Import `ocpi.modules.<name>.push` for every module package that has one (each registers itself)."""
    global _discovered
    if _discovered:
        return
    import ocpi.modules

    for info in pkgutil.iter_modules(ocpi.modules.__path__):
        name = f"ocpi.modules.{info.name}.push"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    _discovered = True
