"""The live snapshot's LIST of pods: the next page is on its way while this one is parsed (one page
ahead, never more), a page that cannot be had fails the snapshot where it would have come, and the
garbage collector stays off while the pods are listed, on again once they are."""
from __future__ import annotations

import gc
import io
import textwrap
import threading
from typing import Any, Callable, Iterator

import pytest

from job.codec import decode_json, encode_json
from job.errors import KubeError
from job.log import RunLog
from job.settings import Settings
from job.snapshot import one_page_ahead, take
from tests.interrupts import run_interrupted

D = "sha256:" + "ab" * 32


def running_pod(ns: str, name: str) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "uid": name,
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8f", "controller": True}],
                         "labels": {"pod-template-hash": "5d8f"}},
            "spec": {"containers": [{"name": "app", "image": "quay.io/shop/web:1"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "quay.io/shop/web:1", "imageID": f"quay.io/shop/web@{D}",
                 "containerID": f"cri-o://{name}"}]}}


class PagedCluster:
    """The calls take() makes, answering with `pages` pages of `per_page` running pods; `fail_at`:
    the page whose request fails (as a continue token that expired would)."""

    cluster_name = "test"
    own_namespace = "default"

    def __init__(self, pages: int, per_page: int, fail_at: int | None = None) -> None:
        self.pages, self.per_page, self.fail_at = pages, per_page, fail_at
        self.listing = False  # from the first page of pods to the last owner listed

    def list_namespaces(self, *, names: tuple[str, ...] = ()) -> list:
        return []

    def list_pods(self, *, namespace: str | None, selector: str, page_size: int,
                  decode: Callable[[bytes], Any] = decode_json) -> Iterator[list[dict]]:
        self.listing = True
        for n in range(self.pages):
            if n == self.fail_at:
                raise KubeError("GET /api/v1/pods: 410 the provided continue parameter is too old", status=410)
            items = [running_pod(f"ns-{n}", f"web-5d8f-{n}-{k}") for k in range(self.per_page)]
            yield decode(encode_json({"kind": "PodList", "items": items}))["items"]  # as job.kube does

    def list_metadata(self, kind: str, *, namespaces: tuple[str, ...] = ()) -> list[dict]:
        self.listing = False
        return [{"kind": "ReplicaSet", "metadata": {"namespace": f"ns-{n}", "name": "web-5d8f", "ownerReferences": [
            {"kind": "Deployment", "name": "web", "controller": True}]}} for n in range(self.pages)]


def _take(cluster: PagedCluster):
    return take(cluster, Settings(), RunLog(stream=io.StringIO(), progress="never"))


def test_the_next_page_is_asked_for_while_this_one_is_parsed_and_never_two_ahead() -> None:
    asked: list[int] = []
    second_asked = threading.Event()

    def pages() -> Iterator[list[int]]:
        for n in range(4):
            asked.append(n)
            if n == 1:
                second_asked.set()
            yield [n]

    listed = one_page_ahead(pages())
    assert next(listed) == [0]
    assert second_asked.wait(timeout=30), "page 1 was not asked for while page 0 was in the caller's hands"
    assert asked == [0, 1]  # and not page 2: one page ahead at most
    assert list(listed) == [[1], [2], [3]]
    assert asked == [0, 1, 2, 3]


def test_every_page_is_parsed_once_in_order_with_the_workloads_its_owners_name() -> None:
    snap = _take(PagedCluster(pages=5, per_page=3))
    assert snap.pages == 5
    assert [p.name for p in snap.pods] == [f"web-5d8f-{n}-{k}" for n in range(5) for k in range(3)]
    assert {(p.workload.kind, p.workload.name) for p in snap.pods} == {("Deployment", "web")}


@pytest.mark.parametrize("fail_at", [0, 1, 3])
def test_a_page_that_cannot_be_had_fails_the_snapshot(fail_at: int) -> None:
    with pytest.raises(KubeError, match="continue parameter is too old"):
        _take(PagedCluster(pages=5, per_page=3, fail_at=fail_at))
    assert gc.isenabled()


def test_an_early_stop_neither_waits_for_the_page_on_its_way_nor_asks_for_another() -> None:
    asked: list[int] = []
    asking_second, second_done, release = threading.Event(), threading.Event(), threading.Event()

    def pages() -> Iterator[list[int]]:
        for n in range(10):
            asked.append(n)
            if n == 1:
                asking_second.set()
                release.wait(timeout=30)  # the API server is slow to answer page 1
                second_done.set()
            yield [n]

    listed = one_page_ahead(pages())
    assert next(listed) == [0]
    assert asking_second.wait(timeout=30)
    listed.close()
    assert not second_done.is_set()  # close() did not wait for the answer
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("pod-pages"):
            thread.join(timeout=30)
    assert asked == [0, 1]


def test_no_collection_runs_while_pods_are_listed_and_the_collector_is_on_again_after() -> None:
    collections: list[int] = []
    cluster = PagedCluster(pages=20, per_page=200)

    def count(phase: str, info: dict) -> None:
        if phase == "start" and cluster.listing:
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        snap = _take(cluster)
    finally:
        gc.callbacks.remove(count)
    assert len(snap.pods) == 4000
    assert collections == []
    assert gc.isenabled()


def test_ctrl_c_while_a_page_is_on_its_way_exits_without_waiting_for_it(tmp_path) -> None:
    """Ctrl-C (a real SIGINT) while the API server is slow to send the next page: the job exits
    at once, as `imvjob` does on an interrupt, not once that page has come (here: never)."""
    body = textwrap.dedent("""\
        from job.snapshot import one_page_ahead
        stalled = threading.Event()
        def pages():
            yield [0]
            stalled.wait()  # the API server never sends page 1
            yield [1]
        def main():
            for page in one_page_ahead(pages()):
                print('page', page, flush=True)
                os.kill(os.getpid(), signal.SIGINT)
                threading.Event().wait(30)
    """)
    assert run_interrupted(tmp_path, body, waiting_for="the page that never came") == (
        130, ["page", "[0]", "interrupted"])
