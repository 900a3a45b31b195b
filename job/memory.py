"""Memory: holding the cyclic garbage collector off while a stage builds many objects at once.

Shared by the stage files' decoding (job.codec), the pod snapshot (job.snapshot) and the
registry reports (job.registries.quay).
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Holds the cyclic garbage collector off while building many objects that hold no cycles
    (decoded JSON, reports parsed from it): with a large heap, the collections that the new
    objects trigger would each scan everything the run already holds. Safe with threads: the
    collector is on again once the last thread that found it on is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
