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
"""

import os

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
