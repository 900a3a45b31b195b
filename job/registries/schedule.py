"""Run work items on a thread pool with a global bound and a bound per lane (a registry host).

Items are started lane by lane in turn, and only when their lane has a free slot, so no
worker thread ever sits blocked behind one busy host while others wait in the queue.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any, Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Workers:
    """Daemon worker threads: an interrupted run (Ctrl-C) exits without waiting for the requests in
    flight, which a ThreadPoolExecutor's workers, joined at exit, would make it do."""

    def __init__(self, count: int) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self.count = count
        for n in range(count):
            threading.Thread(target=self._serve, name=f"registry_{n}", daemon=True).start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.jobs.put(lambda: fn(*args))

    def close(self) -> None:
        """Each worker ends once the job at hand, if any, is done."""
        for _ in range(self.count):
            self.jobs.put(None)


class _Lanes(Generic[T]):
    def __init__(self, items: Sequence[T], lane_of: Callable[[T], str]) -> None:
        self.pending: dict[str, deque[T]] = {}
        for item in items:
            self.pending.setdefault(lane_of(item), deque()).append(item)
        self.order = list(self.pending)
        self.running = {lane: 0 for lane in self.order}
        self.cursor = 0


def run_in_lanes(items: Sequence[T], *, lane_of: Callable[[T], str], work: Callable[[T], R], total_bound: int,
                 lane_bound: int, on_result: Callable[[T, R], None]) -> None:
    """Call work(item) for every item; on_result(item, result) runs on the calling thread.

    `work` must not raise: a per-item failure is a result. If it does raise, the first such
    exception is re-raised here once every started item has finished.
    """
    total_bound, lane_bound = max(1, total_bound), max(1, lane_bound)
    lanes = _Lanes(items, lane_of)
    cond = threading.Condition()
    finished: deque[tuple[T, R]] = deque()
    errors: list[BaseException] = []
    running = 0
    left = len(items)

    def task(lane: str, item: T) -> None:
        nonlocal running
        try:
            result = work(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            with cond:
                errors.append(exc)
                lanes.running[lane] -= 1
                running -= 1
                cond.notify()
            return
        with cond:
            finished.append((item, result))
            lanes.running[lane] -= 1
            running -= 1
            cond.notify()

    def start_what_fits(pool: _Workers) -> None:
        nonlocal running
        progressed = True
        while progressed and running < total_bound:
            progressed = False
            for step in range(len(lanes.order)):
                if running >= total_bound:
                    break
                lane = lanes.order[(lanes.cursor + step) % len(lanes.order)]
                queue = lanes.pending[lane]
                if queue and lanes.running[lane] < lane_bound:
                    lanes.running[lane] += 1
                    running += 1
                    pool.submit(task, lane, queue.popleft())
                    progressed = True
            lanes.cursor = (lanes.cursor + 1) % max(1, len(lanes.order))

    pool = _Workers(min(total_bound, max(1, len(items))))
    try:
        while left:
            with cond:
                if not errors:
                    start_what_fits(pool)
                while not finished and running:
                    cond.wait()
                done = list(finished)
                finished.clear()
                stop = bool(errors) and not running
            for item, result in done:
                left -= 1
                on_result(item, result)
            if stop:
                break
    finally:
        pool.close()
    if errors:
        raise errors[0]
