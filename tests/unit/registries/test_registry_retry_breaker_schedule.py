"""Retry decisions, backoff, Retry-After, the circuit breaker and the bounded scheduler."""
from __future__ import annotations

import random
import textwrap
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from job.registries.breaker import HostBreaker
from job.registries.retry import backoff_delay, is_retryable
from job.retry_after import parse_retry_after
from job.registries.schedule import run_in_lanes
from tests.interrupts import run_interrupted


@pytest.mark.parametrize("status, retried", [(200, False), (404, False), (401, False), (429, True), (500, True),
                                             (501, False), (502, True), (503, True), (504, True), (505, False),
                                             (520, True)])
def test_which_statuses_are_retried(status, retried):
    assert is_retryable(status) is retried


def test_a_definite_status_is_not_retried():
    assert is_retryable(520, definite=frozenset({520})) is False


def test_backoff_grows_exponentially_with_jitter_between_half_and_full_step():
    rand = random.Random(7)
    for attempt, step in enumerate([0.5, 1.0, 2.0, 4.0, 8.0]):
        delays = [backoff_delay(attempt, rand=rand) for _ in range(200)]
        assert min(delays) >= step / 2 and max(delays) <= step
        assert max(delays) - min(delays) > step / 4  # jittered, not constant


def test_backoff_is_capped():
    assert backoff_delay(40, cap=30.0, rand=random.Random(1)) <= 30.0


@pytest.mark.parametrize("value, seconds", [("7", 7.0), (" 0 ", 0.0), ("", None), (None, None), ("soon", None),
                                            ("-3", None), ("1.5", None)])
def test_retry_after_seconds(value, seconds):
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "\uff17"])
def test_retry_after_in_other_digits_is_not_seconds(value):
    """Only ASCII digits are delta-seconds (RFC 9110); int() would read these, or fail on them."""
    assert parse_retry_after(value) is None


def test_retry_after_of_thousands_of_digits_is_a_wait_past_any_budget():
    assert parse_retry_after("9" * 5000) == float("inf")


def test_retry_after_http_date():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    earlier = (now - timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=now) == 90.0
    assert parse_retry_after(earlier, now=now) == 0.0


def test_breaker_opens_after_consecutive_failures_only():
    breaker = HostBreaker(3)
    breaker.failure("connection refused")
    breaker.failure("connection refused")
    breaker.success()
    breaker.failure("connection refused")
    breaker.failure("connection refused")
    assert not breaker.is_open and not breaker.opened.is_set()
    breaker.failure("no answer within 5s")
    assert breaker.is_open and breaker.opened.is_set()
    assert breaker.reason.startswith("no answer within 5s (3 consecutive failures")
    breaker.success()
    assert breaker.is_open  # stays open for the run


class Gauges:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.total_max = 0
        self.lane: Counter[str] = Counter()
        self.lane_max: Counter[str] = Counter()

    def work(self, item: tuple[str, int]) -> str:
        lane, n = item
        with self.lock:
            self.total += 1
            self.lane[lane] += 1
            self.total_max = max(self.total_max, self.total)
            self.lane_max[lane] = max(self.lane_max[lane], self.lane[lane])
        time.sleep(0.02)
        with self.lock:
            self.total -= 1
            self.lane[lane] -= 1
        return f"{lane}-{n}"


def test_bounds_are_reached_and_never_exceeded():
    gauges = Gauges()
    items = [(lane, n) for lane in "abc" for n in range(12)]
    results: dict = {}
    caller = threading.current_thread()
    threads: set = set()

    def collect(item, result):
        threads.add(threading.current_thread())
        results[item] = result

    run_in_lanes(items, lane_of=lambda i: i[0], work=gauges.work, total_bound=5, lane_bound=2, on_result=collect)
    assert results == {item: f"{item[0]}-{item[1]}" for item in items}
    assert gauges.total_max == 5
    assert max(gauges.lane_max.values()) == 2
    assert threads == {caller}


def test_one_busy_lane_does_not_hold_the_others():
    gauges = Gauges()
    items = [("big", n) for n in range(30)] + [("small", 0)]
    order: list = []
    run_in_lanes(items, lane_of=lambda i: i[0], work=gauges.work, total_bound=4, lane_bound=2,
                 on_result=lambda item, _: order.append(item))
    # The small lane's one item is started in the first round, not after the big lane's 30.
    assert order.index(("small", 0)) < 5


def test_an_exception_in_work_is_raised_after_the_rest_finished():
    done: list = []

    def work(n: int) -> int:
        if n == 3:
            raise RuntimeError("boom")
        return n

    with pytest.raises(RuntimeError, match="boom"):
        run_in_lanes(list(range(6)), lane_of=lambda n: "x", work=work, total_bound=2, lane_bound=2,
                     on_result=lambda item, result: done.append(item))
    assert 3 not in done


def test_no_items_is_nothing_to_do():
    run_in_lanes([], lane_of=str, work=str, total_bound=3, lane_bound=1, on_result=lambda *_: None)


def test_ctrl_c_does_not_wait_for_the_requests_in_flight(tmp_path):
    """Ctrl-C (a real SIGINT) while a registry is slow to answer: the job exits at once, as `imvjob`
    does on an interrupt, not once that request ends (here: never)."""
    body = textwrap.dedent("""\
        from job.registries.schedule import run_in_lanes
        stalled = threading.Event()
        def work(item):
            if item == 'slow':
                stalled.wait()  # the registry never answers
            return item
        def on_result(item, result):
            print('answered', item, flush=True)
            os.kill(os.getpid(), signal.SIGINT)
        def main():
            run_in_lanes(['slow', 'fast'], lane_of=str, work=work, total_bound=2, lane_bound=1,
                         on_result=on_result)
    """)
    assert run_interrupted(tmp_path, body, waiting_for="the request that never ended") == (
        130, ["answered", "fast", "interrupted"])
