"""gunicorn settings of evhub's web processes: the Procfile's web line, the benches and the tests' peer servers
(`gunicorn config.wsgi -c config/gunicorn.conf.py`; options given on the command line override these).

The application is loaded once in the master and warmed there (config/warmup.py) before the workers are
forked, so that no request pays the import of the application or Django's and graphene's lazy set-up:
each worker's first search went from 795-975 ms to 10-25 ms, within 2x of the warm p50 of the same run
(bench/bench_cold_start.py; figures in config/warmup.py). The master opens no database or cache connection (warm_master checks and closes any); each
worker opens its own after the fork.

Each worker waits for connections alone (config/gunicorn_worker.py: one worker woken per connection, not
every idle one).

A consequence of preloading: a code change needs a restart of the master (HUP reloads the workers from the
master's copy), which `make run` and deployments do anyway.

gunicorn's control socket (`gunicornc`) is named after the address served, in gunicorn's own directory
($XDG_RUNTIME_DIR, else ~/.gunicorn): `gunicornc -s ~/.gunicorn/gunicorn-127.0.0.1-8000.ctl -c "show workers"`. Its
default is one path for every gunicorn of the machine: each one started took it from the last (the tests'
peer servers, the benches and `make run` all start one), and each one stopped deleted it.
"""

import os
import re

preload_app = True
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "config.gunicorn_worker.ExclusiveSyncWorker"


def when_ready(server):
    """In the master, after the application is loaded and before the workers are forked."""
    from config.warmup import freeze_before_fork, warm_master

    steps = warm_master()
    server.log.info("warmed before fork: %s", ", ".join(f"{name} {ms:.0f} ms" for name, ms in steps.items()))
    server.log.info("objects frozen before fork: %d", freeze_before_fork())


def post_worker_init(worker):
    """In each worker, after the fork, before it accepts a request."""
    from config.warmup import warm_http, warm_worker

    steps = warm_worker()
    try:
        steps |= warm_http(worker)
    except Exception:  # noqa: BLE001 - a warm-up failure must not stop the worker
        worker.log.exception("warm-up through gunicorn failed")
    worker.log.info("worker warmed: %s", ", ".join(f"{name} {ms:.0f} ms" for name, ms in steps.items()))


def on_starting(server):
    """In the master, before it binds: the control socket's path of its own, unless one was given."""
    server.cfg.set("control_socket", control_socket_path(server.cfg))


def control_socket_path(cfg) -> str:
    """`cfg.control_socket` if set, else gunicorn's default path named after the first address served."""
    default = cfg.settings["control_socket"].default
    if cfg.control_socket != default or not cfg.bind:
        return cfg.control_socket
    address = re.sub(r"[^A-Za-z0-9.]+", "-", cfg.bind[0].removeprefix("unix:")).strip("-")[-60:]
    return os.path.join(os.path.dirname(default), f"gunicorn-{address}.ctl")
