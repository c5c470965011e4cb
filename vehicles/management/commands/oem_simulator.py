"""Serve the simulated car maker's cloud (vehicles.simulator_server) for the demo, tests and benchmarks."""

import json

from aiohttp import web
from django.core.management.base import BaseCommand

from vehicles.simulator_server import CLOUD, Config, app_make


def _pair(text: str) -> tuple[float, float]:
    capacity, _, per_second = text.partition("/")
    return float(capacity), float(per_second)


class Command(BaseCommand):
    help = "Serve simulated cars behind a car maker's HTTP API, with configurable latency, quotas and faults."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--latency", type=float, default=0.05, help="seconds before every answer")
        parser.add_argument("--speed", type=float, default=30.0,
                            help="simulated seconds per real second: how fast cars charge and drive")
        parser.add_argument("--report-every", type=float, default=30.0,
                            help="seconds between two reports of a car to the cloud (its maker timestamps)")
        parser.add_argument("--account-quota", type=_pair, default=(30.0, 0.5), metavar="CAPACITY/PER_SECOND")
        parser.add_argument("--maker-quota", type=_pair, default=(2000.0, 500.0), metavar="CAPACITY/PER_SECOND")
        parser.add_argument("--access-ttl", type=float, default=900.0, help="access token lifetime, seconds")
        parser.add_argument("--faults", default="{}",
                            help='JSON probabilities of faults per request, e.g. {"500": 0.02, "timeout": 0.01}')
        parser.add_argument("--account", action="append", default=[], metavar="USERNAME:PASSWORD[:CARS]",
                            help="an account to create at start (repeatable)")

    def handle(self, *args, **opts):
        config = Config(latency=opts["latency"], speed=opts["speed"], report_every=opts["report_every"],
                        account_quota=opts["account_quota"], maker_quota=opts["maker_quota"],
                        access_ttl=opts["access_ttl"], fault_rates=json.loads(opts["faults"]))
        app = app_make(config)
        for spec in opts["account"]:
            username, password, *cars = spec.split(":")
            app[CLOUD].account_add(username, password, int(cars[0]) if cars else 1)
        self.stdout.write(f"OEM simulator on http://{opts['host']}:{opts['port']} "
                          f"(latency {config.latency:g} s, speed x{config.speed:g})")
        web.run_app(app, host=opts["host"], port=opts["port"], print=None, access_log=None)
