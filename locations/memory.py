"""Memory management for the bulk paths: pulls, imports and pages of thousands of objects."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block.

    A batch of 500 locations (or a sender's page of 1,000) allocates some hundred thousand dicts, lists,
    tuples and instances that stay alive until it is written or encoded; each allocation threshold reached
    meanwhile made the collector walk them again, and every few batches the whole process: a third of a
    pull's CPU, a fifth of a page's. Nothing of a batch needs the collector (reference counting frees it);
    collection resumes when the block ends. Left alone when someone else paused it (another thread of a
    pull): it is process-wide, and whoever paused it resumes it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
