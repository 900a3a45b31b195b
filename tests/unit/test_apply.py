"""The apply plan (pure): which object gets which write, from metadata alone."""
from __future__ import annotations

import yaml

from job.apply import merge_patch, merged_labels, plan, write_offline
from job.desired import HASH_ANNOTATION, desired_state
from job.model import ScanResult, ScanState
from tests.apply_plan import NOW, REPORT
from tests.apply_plan import listed_meta as _meta
from tests.apply_plan import run_tasks as _run
from tests.apply_plan import vouched_meta as _vouched
from tests.factories import DB_REF as REF2
from tests.factories import WEB_REF as REF1
from tests.factories import pod_of as pod
from tests.factories import snap_of as snap

def test_plan_creates_updates_deletes_and_leaves_unchanged_alone() -> None:
    results = {REF1: ScanResult(REF1, ScanState.SCANNED, REPORT),
               REF2: ScanResult(REF2, ScanState.UNREACHABLE, detail="down")}
    state = desired_state(snap(pod("a", "p", REF1, REF2), pod("b", "p", REF1)), results, now=NOW)
    existing = [
        _vouched(state.objects[f"a/{REF1.name}"]),     # unchanged: not touched
        _meta("b", REF1.name, hash_="stale"),          # changed: update
        _meta("a", REF2.name),                         # scan failed: keep, follow the pods
        _meta("c", "sha256." + "9" * 64),              # no longer runs: delete
        _meta("d", "sha256." + "8" * 64, ours=False),  # not ours: left alone
    ]
    tasks, outcome = plan(state, existing, adopt=False)
    assert outcome.unchanged == [f"a/{REF1.name}"]
    assert outcome.unmanaged == ["d/sha256." + "8" * 64]
    assert _run(tasks) == sorted([("update", f"b/{REF1.name}"), ("refresh", f"a/{REF2.name}"),
                                  ("delete", "c/sha256." + "9" * 64)])


def test_plan_adopts_only_when_asked_and_never_leaves_scope() -> None:
    results = {REF1: ScanResult(REF1, ScanState.SCANNED, REPORT)}
    state = desired_state(snap(pod("a", "p", REF1), scope=("a",)), results, now=NOW)
    existing = [_meta("a", REF1.name, ours=False), _meta("z", "sha256." + "7" * 64)]
    tasks, outcome = plan(state, existing, adopt=False)
    assert _run(tasks) == [] and outcome.unmanaged == [f"a/{REF1.name}"]
    tasks, outcome = plan(state, existing, adopt=True)
    # Adopted: the CSO-made object is updated (it has no hash); namespace z is outside the scope.
    assert _run(tasks) == [("update", f"a/{REF1.name}")] and outcome.unmanaged == []


def test_plan_creates_what_is_missing() -> None:
    results = {REF1: ScanResult(REF1, ScanState.SCANNED, REPORT)}
    state = desired_state(snap(pod("a", "p", REF1)), results, now=NOW)
    tasks, _ = plan(state, [], adopt=False)
    assert _run(tasks) == [("create", f"a/{REF1.name}")]


def test_merged_labels_keep_foreign_labels_and_follow_pods() -> None:
    existing = {"team": "x", "app.kubernetes.io/part-of": "shop", "a/gone": "true",
                "app.kubernetes.io/managed-by": "someone"}
    assert merged_labels(existing, {"app.kubernetes.io/managed-by": "imvjob", "a/new": "true"}) == {
        "team": "x", "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "imvjob",
        "a/new": "true"}


def test_write_offline_is_kubectl_applyable_yaml(tmp_path) -> None:
    results = {REF1: ScanResult(REF1, ScanState.SCANNED, REPORT)}
    state = desired_state(snap(pod("a", "p", REF1), pod("b", "p", REF1)), results, now=NOW)
    outcome = write_offline(state, tmp_path / "imvs.yaml")
    docs = list(yaml.safe_load_all((tmp_path / "imvs.yaml").read_text()))
    assert [d["metadata"]["namespace"] for d in docs] == ["a", "b"]
    assert all(d["kind"] == "ImageManifestVuln" and d["status"]["lastUpdate"] for d in docs)
    assert outcome.created == [f"a/{REF1.name}", f"b/{REF1.name}"]


class ObjectStore:
    """One object as the API server keeps it; checks the console's invariant after every write."""

    def __init__(self, obj: dict) -> None:
        self.obj = obj
        self.writes: list[str] = []
        self.rv = 1

    def _check(self) -> None:
        labels = self.obj["metadata"].get("labels") or {}
        keys = set((self.obj.get("status") or {}).get("affectedPods") or {})
        pod_labels = {k for k, v in labels.items() if v == "true" and "." not in k.split("/")[0]}
        assert pod_labels <= keys, f"label without its affectedPods key after {self.writes}"

    def _bump(self) -> dict:
        self.rv += 1
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        self._check()
        return {"metadata": dict(self.obj["metadata"])}

    def patch_imv(self, namespace: str, name: str, patch: dict, *, dry_run: bool) -> dict:
        self.writes.append("patch+spec" if "spec" in patch else "patch")
        meta = self.obj["metadata"]
        assert patch["metadata"].pop("resourceVersion") == meta["resourceVersion"]
        for key, changes in patch["metadata"].items():
            merged = {**(meta.get(key) or {}), **changes}
            meta[key] = {k: v for k, v in merged.items() if v is not None}
        if "spec" in patch:
            spec = {**self.obj.get("spec", {}), **patch["spec"]}
            self.obj["spec"] = {k: v for k, v in spec.items() if v is not None}
            meta["generation"] = meta.get("generation", 1) + 1
        return self._bump()

    def update_imv_status(self, body: dict, *, dry_run: bool) -> dict:
        self.writes.append("status")
        self.obj = {**self.obj, "status": body["status"]}
        return self._bump()


def _applier(store: ObjectStore):
    from job.apply import _Applier
    from job.desired import DesiredState
    from job.settings import Settings

    return _Applier(DesiredState(last_update="t"), store, Settings(), None)


def test_pods_replaced_never_leave_a_label_without_its_key_and_hash_comes_last() -> None:
    labels = {"app.kubernetes.io/managed-by": "imvjob", "ns/old": "true", "ns/stays": "true"}
    store = ObjectStore({"metadata": {"name": "n", "namespace": "ns", "resourceVersion": "1", "labels": labels,
                                      "annotations": {HASH_ANNOTATION: "old:1"}, "generation": 1},
                         "spec": {"image": "x"},
                         "status": {"affectedPods": {"ns/old": [], "ns/stays": []}, "lastUpdate": "t0"}})
    new_labels = {"app.kubernetes.io/managed-by": "imvjob", "ns/new": "true", "ns/stays": "true"}
    changed = _applier(store)._converge(store.obj, labels=new_labels, annotations={HASH_ANNOTATION: "new"},
                                        spec={"image": "x"}, status={"affectedPods": {"ns/new": [], "ns/stays": []}})
    assert changed and store.writes == ["patch", "status", "patch"]
    assert store.obj["metadata"]["labels"] == new_labels
    assert store.obj["metadata"]["annotations"][HASH_ANNOTATION] == "new:1"  # the spec did not change


def test_a_new_spec_comes_last_with_the_pod_labels_and_the_hash() -> None:
    """etcd stores the whole object for each write: the large spec goes in one write only."""
    store = ObjectStore({"metadata": {"name": "n", "namespace": "ns", "resourceVersion": "1", "generation": 1,
                                      "labels": {"app.kubernetes.io/managed-by": "imvjob"}, "annotations": {}},
                         "spec": {"image": "x"}})
    features = [{"name": "a", "vulnerabilities": [{"name": "CVE-1"}]}]
    labels = {"app.kubernetes.io/managed-by": "imvjob", "ns/p": "true"}
    assert _applier(store)._converge(store.obj, labels=labels, annotations={HASH_ANNOTATION: "h"},
                                     spec={"image": "x", "features": features}, status={"affectedPods": {"ns/p": []}})
    assert store.writes == ["status", "patch+spec"]
    assert store.obj["spec"] == {"image": "x", "features": features} and store.obj["metadata"]["labels"] == labels
    assert store.obj["metadata"]["annotations"] == {HASH_ANNOTATION: "h:2"}


def test_merge_patch_names_only_what_changes() -> None:
    old = {"image": "x", "features": [{"name": "a"}], "gone": "y", "map": {"k": "1", "drop": "2"}}
    new = {"image": "x", "features": [{"name": "a"}, {"name": "b"}], "map": {"k": "1", "add": "3"}}
    assert merge_patch(old, new) == {"gone": None, "features": [{"name": "a"}, {"name": "b"}],
                                     "map": {"drop": None, "add": "3"}}
    assert merge_patch(old, old) == {} and merge_patch(None, {"a": "1"}) == {"a": "1"}


def test_nothing_to_do_writes_nothing() -> None:
    obj = {"metadata": {"name": "n", "namespace": "ns", "resourceVersion": "1", "labels": {"ns/p": "true"},
                        "annotations": {HASH_ANNOTATION: "h:3"}, "generation": 3},
           "spec": {"image": "x"}, "status": {"affectedPods": {"ns/p": []}, "lastUpdate": "t0"}}
    store = ObjectStore(obj)
    assert not _applier(store)._converge(obj, labels={"ns/p": "true"}, annotations={HASH_ANNOTATION: "h"},
                                         spec={"image": "x"}, status={"affectedPods": {"ns/p": []}})
    assert store.writes == []
