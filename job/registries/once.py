"""Compute a value once per key for the run, however many threads ask at the same moment."""
from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class Once(Generic[V]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[Hashable, threading.Event] = {}
        self._values: dict[Hashable, V] = {}
        self._errors: dict[Hashable, BaseException] = {}

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for `key`; the first caller computes it while later callers wait for it.
        An exception from compute() is raised to every caller of that key."""
        with self._lock:
            event = self._events.get(key)
            owner = event is None
            if owner:
                event = self._events[key] = threading.Event()
        if owner:
            try:
                self._values[key] = compute()
            except BaseException as exc:
                self._errors[key] = exc
                raise
            finally:
                event.set()
        else:
            event.wait()
        if key in self._errors:
            raise self._errors[key]
        return self._values[key]
