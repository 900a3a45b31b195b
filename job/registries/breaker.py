"""A per-host circuit breaker: a dead registry costs seconds, not one timeout per manifest."""
from __future__ import annotations

import threading


class HostBreaker:
    """Opens after `threshold` consecutive failures (connection errors, timeouts, 502/503/504)
    and stays open for the rest of the run. Any other answer from the host closes the count."""

    def __init__(self, threshold: int) -> None:
        self.threshold = max(1, threshold)
        self._lock = threading.Lock()
        self._failures = 0
        self._reason = ""
        #: Set when the breaker opens; backoff sleeps wait on it so they end at once.
        self.opened = threading.Event()

    @property
    def is_open(self) -> bool:
        return self.opened.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    def failure(self, reason: str) -> None:
        with self._lock:
            if self.opened.is_set():
                return
            self._failures += 1
            self._reason = reason
            if self._failures >= self.threshold:
                self._reason = f"{reason} ({self._failures} consecutive failures, host given up for this run)"
                self.opened.set()

    def success(self) -> None:
        with self._lock:
            if not self.opened.is_set():
                self._failures = 0
