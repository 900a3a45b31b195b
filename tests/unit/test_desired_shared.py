"""A manifest that runs in many namespaces: one spec, built once and shared, and content hashes
exactly as the canonical JSON of [labels, spec, status] gives them."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from job.desired import HASH_ANNOTATION, content_hash, desired_state
from job.model import (Container, ContainerKind, Feature, ImageRef, Pod, ScanResult, ScanState, Snapshot,
                       Vulnerability, VulnReport, Workload)

NOW = dt.datetime(2026, 11, 29, 10, 0, 0, tzinfo=dt.timezone.utc)
REF = ImageRef("quay.io", "shop/web", "sha256:" + "1" * 64)


def _canonical_hash(labels, spec, status) -> str:
    text = json.dumps([labels, spec, status], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def test_content_hash_is_the_hash_of_the_canonical_json() -> None:
    labels = {"app.kubernetes.io/managed-by": "imvjob", "a/web-1": "true"}
    spec = {"image": "quay.io/x", "features": [{"name": "é \"q\"\n", "basescores": ["7.5"]}]}
    status = {"highCount": 2, "affectedPods": {"a/web-1": ["cri-o://1"]}}
    expected = _canonical_hash(labels, spec, status)
    assert content_hash(labels, spec, status) == expected
    spec_json = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert content_hash(labels, spec, status, spec_json=spec_json) == expected


def test_namespaces_running_one_manifest_share_its_spec() -> None:
    shared_vuln = Vulnerability("CVE-1", "High", description="d", metadata={"UpdatedBy": "x"})
    report = VulnReport("debian:12", (Feature("openssl", "3", vulnerabilities=(shared_vuln,)),
                                      Feature("clean", "1")))
    pods = [Pod(ns, f"web-{ns}", "u", Workload("Deployment", "web"), "default", (),
                (Container("web", ContainerKind.CONTAINER, "quay.io/shop/web:1", f"cri-o://{ns}", REF),))
            for ns in ("a", "b", "c")]
    snap = Snapshot("2026-11-29T10:00:00Z", "test", pods, {}, [])
    state = desired_state(snap, {REF: ScanResult(REF, ScanState.SCANNED, report)}, now=NOW)
    objects = [state.objects[f"{ns}/{REF.name}"] for ns in ("a", "b", "c")]
    assert objects[0].spec is objects[1].spec is objects[2].spec
    assert [f["name"] for f in objects[0].spec["features"]] == ["openssl"]
    for obj in objects:
        assert obj.status["affectedPods"] == {f"{obj.namespace}/web-{obj.namespace}": [f"cri-o://{obj.namespace}"]}
        assert obj.annotations[HASH_ANNOTATION] == _canonical_hash(obj.labels, obj.spec, obj.status)
    assert len({o.content_hash for o in objects}) == 3  # their pods differ, so do their hashes
