"""Child processes the tests start in a session of their own (Celery workers and beats)."""

from __future__ import annotations

import os
import signal
import subprocess


def process_stop(proc: subprocess.Popen, *, timeout: float) -> None:
    """A warm shutdown first (SIGTERM to the process: a worker finishes its task), then whatever is left of
    its process group (a pull's writing processes, a prefork pool) is killed, and the process reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
