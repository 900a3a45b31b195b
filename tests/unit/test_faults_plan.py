"""The apply plan under faults (pure): what a narrowed run may remove, and when a hash vouches."""
from __future__ import annotations

import dataclasses

import pytest

from job.apply import plan, vouched
from job.desired import HASH_ANNOTATION, desired_state
from job.model import ScanResult, ScanState
from job.writers import Writers, status_digest, status_paths, writers
from tests.apply_plan import NOW, REPORT
from tests.apply_plan import listed_meta as _meta
from tests.apply_plan import run_tasks as _run
from tests.apply_plan import vouched_meta as _vouched
from tests.factories import DB_REF as REF2
from tests.factories import WEB_REF as REF1
from tests.factories import pod_of as pod
from tests.factories import snap_of as snap

pytestmark = pytest.mark.fault


def _state(*pods, selector: str = "", unsure=()):
    s = snap(*pods)
    s.selector, s.unsure = selector, set(unsure)
    results = {REF1: ScanResult(REF1, ScanState.SCANNED, REPORT), REF2: ScanResult(REF2, ScanState.SCANNED, REPORT)}
    return desired_state(s, results, now=NOW)


def test_a_full_run_deletes_what_no_pod_runs() -> None:
    tasks, _ = plan(_state(pod("a", "p", REF1)), [_meta("a", REF2.name)], adopt=False)
    assert ("delete", f"a/{REF2.name}") in _run(tasks)


@pytest.mark.parametrize("narrowing", [{"selector": "app=web"}, {"unsure": ["a/q"]}, {"unsure": ["a"]},
                                       {"unsure": ["*"]}])
def test_a_narrowed_run_reads_before_it_removes(narrowing) -> None:
    state = _state(pod("a", "p", REF1), **narrowing)
    calls = []

    class Rec:
        def create(self, obj):
            calls.append(("create", obj.key))

        def update(self, obj, existing):
            calls.append(("update", obj.key))

        def prune(self, key, meta):
            calls.append(("prune", key))

        def delete(self, key, meta):
            calls.append(("delete", key))

    tasks, _ = plan(state, [_meta("a", REF2.name)], adopt=False)
    for _, task in tasks:
        task(Rec())
    assert sorted(calls) == [("create", f"a/{REF1.name}"), ("prune", f"a/{REF2.name}")]


def test_what_a_run_sees() -> None:
    state = _state(pod("a", "p", REF1), selector="app=web")
    assert state.sees("a/p") and not state.sees("a/q") and state.narrowed("b")
    state = _state(pod("a", "p", REF1), unsure=["a/q", "c"])
    assert state.sees("a/p") and not state.sees("a/q") and not state.sees("c/x") and state.sees("b/x")
    assert state.narrowed("a") and state.narrowed("c") and not state.narrowed("b")
    assert not _state(pod("a", "p", REF1)).narrowed("a")


def test_only_an_untouched_object_is_vouched_for() -> None:
    obj = next(iter(_state(pod("a", "p", REF1)).objects.values()))
    meta = _vouched(obj)["metadata"]
    assert vouched(meta, obj)
    bad = {
        "old hash form": {"annotations": {**meta["annotations"], HASH_ANNOTATION: obj.content_hash}},
        "spec changed": {"generation": 3},
        "label dropped": {"labels": {"app.kubernetes.io/managed-by": "imvjob"}},
        "label added": {"labels": {**meta["labels"], "a/ghost": "true"}},
        "status by another": {"writers": dataclasses.replace(meta["writers"], others_status="2026-11-29T10:00:00Z")},
        "status fields": {"writers": dataclasses.replace(meta["writers"], status_fields="x")},
        "no writers": {"writers": Writers()},
    }
    for why, change in bad.items():
        assert not vouched({**meta, **change}, obj), why


def test_writers_from_managed_fields() -> None:
    fields = [
        {"manager": "imvjob", "operation": "Update", "time": "2026-11-29T10:00:01Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:a/p": {}}}, "f:spec": {}}},
        {"manager": "imvjob", "operation": "Update", "time": "2026-11-29T10:00:00Z", "subresource": "status",
         "fieldsType": "FieldsV1",
         "fieldsV1": {"f:status": {".": {}, "f:affectedPods": {".": {}, "f:a/p": {}}, "f:highCount": {},
                                   "f:lastUpdate": {}}}},
        {"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-28T09:00:00Z", "subresource": "status",
         "fieldsV1": {"f:status": {"f:fixableCount": {}}}},
    ]
    w = writers(fields)
    assert w.ours == "2026-11-29T10:00:01Z" and w.others_status == "2026-11-28T09:00:00Z"
    assert w.status_fields == status_digest(status_paths({"affectedPods": {"a/p": []}, "highCount": 1,
                                                          "fixableCount": 1}))
    # Garbage never vouches: it reads as another writer's, later than any of ours.
    assert writers("x") == Writers() and writers([1]).others_status > w.ours


def test_specs_are_built_as_the_installed_crd_stores_them() -> None:
    from job.imv_spec import prune_to_schema

    schema = {"type": "object", "properties": {
        "image": {"type": "string"},
        "features": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "vulnerabilities": {"type": "array", "items": {
                "type": "object", "properties": {"name": {"type": "string"}}}}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "map": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}
    doc = {"image": "x", "features": [{"name": "a", "basescores": ["7.5"], "vulnerabilities": [{"name": "C", "x": 1}]}],
           "free": {"any": {"thing": 1}}, "map": {"k": ["v"]}, "dropped": 1}
    assert prune_to_schema(doc, schema) == {"image": "x", "features": [{"name": "a", "vulnerabilities": [{"name": "C"}]}],
                                            "free": {"any": {"thing": 1}}, "map": {"k": ["v"]}}
    assert prune_to_schema(doc, None) is doc
    state = desired_state(snap(pod("a", "p", REF1)), {REF1: ScanResult(REF1, ScanState.SCANNED, REPORT)}, now=NOW,
                          spec_schema=schema)
    assert "versionformat" not in next(iter(state.objects.values())).spec["features"][0]


@pytest.mark.parametrize("answer", ["x", [], {"spec": "x"}, {"spec": {"versions": "x"}},
                                    {"spec": {"versions": [1, {"name": "v1alpha1", "schema": []}]}},
                                    {"spec": {"versions": [{"name": "v1alpha1", "schema": {
                                        "openAPIV3Schema": {"properties": {"spec": 3}}}}]}}])
def test_a_crd_of_any_shape_reads_as_no_schema(answer) -> None:
    from job.kube import Kube

    class Answering(Kube):
        def __init__(self) -> None:  # no connection: the answer is given
            pass

        def request(self, *args, **kwargs):
            return answer

    assert Answering().imv_spec_schema() is None


def test_listed_objects_of_any_shape_are_passed_over_or_typed() -> None:
    from job.kube import Kube

    page = ["x", {"metadata": "x"}, {"metadata": {"name": 3, "namespace": "a"}}, {"metadata": {"name": "n"}},
            {"metadata": {"name": "n", "namespace": "a", "labels": ["x"], "annotations": {"k": 1, "ok": "v"},
                          "managedFields": "x"}}]

    class Listing(Kube):
        def __init__(self) -> None:
            pass

        def list_pages(self, *args, **kwargs):
            yield page

    [only] = Listing().list_imv_metadata()
    meta = only["metadata"]
    assert (meta["name"], meta["labels"], meta["annotations"]) == ("n", {}, {"ok": "v"})
    # And the plan reads it without a crash: not ours, so it is left alone.
    state = _state(pod("a", "p", REF1))
    _, outcome = plan(state, [only], adopt=False)
    assert outcome.unmanaged == ["a/n"]
