"""The run's byte budget: bounded, never a deadlock between answers read in part; decode cost; the
watchdog cuts every request at its own deadline."""
from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import orjson
import pytest

from job.registries.bounds import ByteBudget, TooBig, Watchdog, decode_cost

pytestmark = pytest.mark.fault


class Holder:
    def __init__(self) -> None:
        self.held = 0


def test_a_holder_waits_for_what_others_release_and_gives_up_at_its_deadline():
    budget = ByteBudget(10)
    a, b = Holder(), Holder()
    assert budget.take(8, holder=a, until=time.monotonic() + 1)
    started = time.monotonic()
    assert not budget.take(4, holder=b, until=time.monotonic() + 0.3)  # a is busy, not waiting
    assert 0.25 < time.monotonic() - started < 1.0
    threading.Timer(0.2, budget.release, args=(a,)).start()
    assert budget.take(4, holder=b, until=time.monotonic() + 5)
    assert (budget.used, a.held, b.held) == (4, 0, 4)


def test_answers_read_in_part_never_wait_on_each_other_for_ever():
    budget = ByteBudget(10)
    holders = [Holder() for _ in range(3)]
    for h in holders:
        assert budget.take(3, holder=h, until=time.monotonic() + 1)
    done: list[float] = []

    def finish(h: Holder) -> None:
        # Each needs 3 more: only one fits at a time past the limit, and then releases.
        assert budget.take(3, holder=h, until=time.monotonic() + 5)
        done.append(time.monotonic())
        budget.release(h)

    started = time.monotonic()
    threads = [threading.Thread(target=finish, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 3 and max(done) - started < 1.0
    assert budget.used == 0 and budget.peak <= 10 + 3


def test_more_than_the_whole_budget_for_one_manifest_is_refused_at_once():
    budget = ByteBudget(10)
    with pytest.raises(TooBig):
        budget.take(11, holder=Holder(), until=time.monotonic() + 5)


@pytest.mark.parametrize("body", [
    b"[" + b",".join([b"[]"] * 10000) + b"]",
    b"[" + b",".join([b'{"a":1}'] * 10000) + b"]",
    b'{"s": "' + b"x" * 100000 + b'"}',
    b"[" + b",".join([b"1.5"] * 10000) + b"]",
])
def test_decode_cost_is_at_least_what_decoding_takes(body):
    import tracemalloc

    tracemalloc.start()
    try:
        doc = orjson.loads(body)
        taken = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert doc is not None and decode_cost(body) >= taken


def test_a_request_due_before_those_already_watched_is_cut_at_its_own_deadline():
    watchdog = Watchdog()
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        # Two requests due in a minute, then one due at once: the watchdog, waiting for the
        # first, must wake up for the last.
        late = [watchdog.watch(time.monotonic() + 60) for _ in range(2)]
        for watch, (ours, _) in zip(late, pairs):
            watch.conn = SimpleNamespace(sock=ours)
        time.sleep(0.3)  # the watchdog's thread has started, and waits for the first
        soon = watchdog.watch(time.monotonic() + 0.2)
        soon.conn = SimpleNamespace(sock=pairs[2][0])
        pairs[2][0].settimeout(30)
        started = time.monotonic()
        assert pairs[2][0].recv(1) == b""  # shut down under the reader
        assert time.monotonic() - started < 20 and soon.expired
        assert not any(w.expired for w in late)
    finally:
        watchdog.close()
        for a, b in pairs:
            a.close()
            b.close()
