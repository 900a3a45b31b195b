"""Bounds that no registry answer may pass: a deadline per request, and bytes held by all at once.

- `Watchdog` cuts the connection of a request still running at its deadline. Socket timeouts
  bound each read, not the request: a registry that sends one byte a second never trips them.
- `ByteBudget` is the bytes of answers held at once by every manifest together: bodies as they
  are read, and what decoding them will take (`decode_cost`), until the manifest's scan ends.
"""
from __future__ import annotations

import ctypes
import heapq
import itertools
import socket
import threading
import time
from typing import Any

from urllib3.connectionpool import HTTPConnectionPool

_M_ARENA_MAX = -8  # glibc's malloc.h

# --- the deadline of one request ------------------------------------------------------------

_current = threading.local()


class Watch:
    """One request attempt: the connection it uses, and whether its deadline cut it."""

    __slots__ = ("deadline", "conn", "expired", "done", "_lock")

    def __init__(self, deadline: float, lock: threading.Condition) -> None:
        self.deadline = deadline
        self._lock = lock  # the watchdog's: never cut a connection already handed back to the pool
        self.conn: Any = None
        self.expired = False
        self.done = False

    def __enter__(self) -> "Watch":
        _current.watch = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        _current.watch = None

    def stop(self) -> None:
        """The request is over (call it before its connection goes back to the pool)."""
        with self._lock:
            self.done = True

    def cut(self) -> bool:
        """Shut the connection down (the thread blocked on it wakes up with an error); False when
        it has no socket yet (still connecting: bounded by the connect timeout, try again)."""
        self.expired = True
        sock = getattr(self.conn, "sock", None)
        if sock is None:
            return False
        try:
            # The plain socket's shutdown, also under TLS: it wakes a reader blocked in recv.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
        return True


def _attach(conn: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.conn = conn


_WATCHED: dict[type, type] = {}


def watched_pools(classes: dict[str, type]) -> dict[str, type]:
    """The pool classes of a urllib3 PoolManager, each telling the current Watch its connection."""
    out = {}
    for scheme, cls in classes.items():
        if cls not in _WATCHED and issubclass(cls, HTTPConnectionPool):
            def _get_conn(self: Any, timeout: float | None = None, _base: type = cls) -> Any:
                conn = _base._get_conn(self, timeout=timeout)
                _attach(conn)
                return conn
            _WATCHED[cls] = type(f"Watched{cls.__name__}", (cls,), {"_get_conn": _get_conn})
        out[scheme] = _WATCHED.get(cls, cls)
    return out


class Watchdog:
    """One thread for the run that cuts requests at their deadline."""

    RETRY = 0.1  # a request still connecting at its deadline is cut this much later

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: float) -> Watch:
        watch = Watch(deadline, self._cond)
        with self._cond:
            # Woken only when this deadline comes before every other: the thread already wakes
            # at the earliest one, and waking it for every request costs each request a switch.
            earliest = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, next(self._seq), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="registry-deadlines", daemon=True)
                self._thread.start()
            elif earliest:
                self._cond.notify()
        return watch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done and not watch.cut():
                        heapq.heappush(self._heap, (now + self.RETRY, next(self._seq), watch))
                        break
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


# --- bytes held at once ---------------------------------------------------------------------


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Have glibc's malloc share a few arenas between threads instead of one per thread: each
    scan thread's arena would keep the memory of the answers it freed, so the process would
    hold many times the byte budget (measured: 178-221 MiB instead of 128 MiB for 16 answers of
    8 MiB with a 48 MiB budget). Does nothing where malloc is not glibc's."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


#: Every byte but the four that decode_cost counts.
_NOT_COUNTED = bytes(b for b in range(256) if b not in b"{[,:")


def decode_cost(body: bytes | bytearray) -> int:
    """An upper bound of the bytes a JSON body takes while it is decoded into Python objects:
    text takes its length again, twice for a while; a few bytes of JSON can be a container of
    tens of bytes ("[]," is a 56-byte list)."""
    # The four counted bytes are a few percent of a report: one pass keeps them, and the counts
    # run over those alone (four passes over a 100 kB report took ~200 us of CPU per answer).
    counted = body.translate(None, _NOT_COUNTED)
    return (2 * len(body) + 200 * counted.count(b"{") + 64 * counted.count(b"[")
            + 48 * (counted.count(b",") + counted.count(b":")))


class TooBig(Exception):
    """More than the whole budget for one manifest: it can never fit."""


class ByteBudget:
    """Bytes held at once by every manifest together, at most `limit`.

    A manifest that needs more than is left waits until others release theirs, or its deadline.
    Answers read in part must never wait on each other for ever: when every other holder is
    waiting too, the one that asks goes past the limit, and alone, until it releases."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._holders = 0
        self._waiting_holders = 0
        self._past_limit: Any = None

    def take(self, n: int, *, holder: Any, until: float) -> bool:
        """Reserve n bytes for `holder` (one manifest's: anything with an int `held`); False when
        `until` passed first. Raises TooBig."""
        if holder.held + n > self.limit:
            raise TooBig
        with self._cond:
            while self.used + n > self.limit and holder is not self._past_limit:
                others = self._holders - (1 if holder.held else 0)
                if self._past_limit is None and others == self._waiting_holders:
                    self._past_limit = holder
                    break
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._waiting_holders += 1 if holder.held else 0
                self._cond.wait(left)
                self._waiting_holders -= 1 if holder.held else 0
            if not holder.held:
                self._holders += 1
            holder.held += n
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def release(self, holder: Any) -> None:
        with self._cond:
            if holder.held:
                self.used -= holder.held
                holder.held = 0
                self._holders -= 1
            if self._past_limit is holder:
                self._past_limit = None
            self._cond.notify_all()
