"""Snapshots built page by page, as a paginated LIST returns pods: same pods, same workloads
(owners resolved once they are listed), one parsed object per distinct manifest."""
from __future__ import annotations

from job.model import ImageRef, Workload
from job.pods import owner_index
from job.settings import Settings
from job.snapshot import SnapshotBuilder, build_snapshot

D = "sha256:" + "ab" * 32
D2 = "sha256:" + "cd" * 32


def pod(ns: str, name: str, image_id: str, owner: tuple[str, str] | None = None, labels: dict | None = None) -> dict:
    meta = {"name": name, "namespace": ns, "uid": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"containers": [{"name": "app", "image": "quay.io/shop/web:1"}]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": "app", "imageID": image_id, "containerID": f"cri-o://{name}"}]}}


PODS = [
    pod("a", "web-5d8f-x1", f"quay.io/shop/web@{D}", ("ReplicaSet", "web-5d8f"), {"pod-template-hash": "5d8f"}),
    pod("a", "web-5d8f-x2", f"quay.io/shop/web@{D}", ("ReplicaSet", "web-5d8f"), {"pod-template-hash": "5d8f"}),
    pod("b", "nightly-29021780-q", f"quay.io/shop/batch@{D2}", ("Job", "nightly-29021780")),
    pod("b", "db-0", f"quay.io/shop/web@{D}", ("StatefulSet", "db")),
    pod("b", "odd-rs-pod", f"quay.io/shop/web@{D}", ("ReplicaSet", "legacy")),
]
OWNERS = owner_index([
    {"kind": "ReplicaSet", "metadata": {"namespace": "a", "name": "web-5d8f",
                                        "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}]}},
    {"kind": "Job", "metadata": {"namespace": "b", "name": "nightly-29021780",
                                 "ownerReferences": [{"kind": "CronJob", "name": "backup", "controller": True}]}},
])


def test_pages_give_what_one_list_gives_with_owners_known_only_at_the_end() -> None:
    whole = build_snapshot(PODS, settings=Settings(), owners=OWNERS, namespaces={}, cluster="c", source="s", pages=1)
    builder = SnapshotBuilder(Settings())
    for start in range(0, len(PODS), 2):  # pages of two
        builder.add(PODS[start:start + 2])
    assert builder.owner_kinds == {"ReplicaSet", "Job"}
    paged = builder.finish(owners=OWNERS, namespaces={}, cluster="c", source="s", pages=3)
    assert paged.pods == whole.pods
    workloads = {p.name: p.workload for p in paged.pods}
    assert workloads == {
        "web-5d8f-x1": Workload("Deployment", "web"), "web-5d8f-x2": Workload("Deployment", "web"),
        "nightly-29021780-q": Workload("CronJob", "backup"),  # the owner's name, not the convention's
        "db-0": Workload("StatefulSet", "db"), "odd-rs-pod": Workload("ReplicaSet", "legacy")}
    assert paged.pages == 3


def test_without_owners_naming_conventions_stand_in() -> None:
    snap = build_snapshot(PODS, settings=Settings(), owners={}, namespaces={}, cluster="c", source="s", pages=1)
    assert {p.name: str(p.workload) for p in snap.pods}["nightly-29021780-q"] == "CronJob/nightly"


def test_each_distinct_manifest_is_parsed_once_and_shared() -> None:
    snap = build_snapshot(PODS, settings=Settings(), owners={}, namespaces={}, cluster="c", source="s", pages=1)
    refs = [p.containers[0].ref for p in snap.pods]
    assert refs[0] == ImageRef("quay.io", "shop/web", D)
    assert refs[0] is refs[1] is refs[3]  # one object, however many containers run it


def test_pods_out_of_scope_or_repeated_are_left_out_page_by_page() -> None:
    builder = SnapshotBuilder(Settings(exclude_namespace=("b",)))
    builder.add(PODS[:2])
    builder.add(PODS[1:])  # a pod repeated across pages counts once
    snap = builder.finish(owners={}, namespaces={}, cluster="c", source="s", pages=2)
    assert [p.name for p in snap.pods] == ["web-5d8f-x1", "web-5d8f-x2"]
    assert builder.owner_kinds == {"ReplicaSet"}  # only in-scope pods decide which owners to list
