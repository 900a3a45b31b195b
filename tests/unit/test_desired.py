"""The desired ImageManifestVulns, rule by rule of docs/compatibility.md."""
from __future__ import annotations

import datetime as dt
import json

from job.codec import encode_json
from job.desired import HASH_ANNOTATION, SHRUNK_ANNOTATION, desired_state, go_time_string, shard_index
from job.imv_spec import MAX_OBJECT_BYTES, severity_status, shrink
from job.model import Feature, ImageRef, ScanResult, ScanState
from tests.factories import DB_REF, RUN_AT, WEB_DIGEST, WEB_REF, pod_of, report_of, scanned, snap_of, vuln_of


def test_go_time_string_matches_go() -> None:
    assert go_time_string(RUN_AT) == "2026-11-29 10:00:48.32847 +0000 UTC"
    assert go_time_string(RUN_AT.replace(microsecond=0)) == "2026-11-29 10:00:48 +0000 UTC"
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert go_time_string(dt.datetime(2026, 1, 1, 2, 0, 0, 500000, tzinfo=plus2)) == "2026-01-01 00:00:00.5 +0000 UTC"


def test_counts_are_entries_not_names_and_zero_counts_are_omitted() -> None:
    features = [Feature("openssl", "3.0", vulnerabilities=(vuln_of("CVE-1", "High", "3.1"), vuln_of("CVE-2", "Low"))),
                Feature("curl", "7", vulnerabilities=(vuln_of("CVE-1", "High"), vuln_of("CVE-3", "Critical", "8")))]
    assert severity_status(features) == {"highestSeverity": "Critical", "lowCount": 1, "highCount": 2,
                                         "criticalCount": 1, "fixableCount": 2}
    assert severity_status([]) == {}


def test_one_object_per_namespace_and_digest_with_exact_shape() -> None:
    meta = {"UpdatedBy": "Debian", "NVD": {"CVSSv3": {"Score": 7.5, "Vectors": "AV:N"}}}
    rep = report_of(Feature("openssl", "3.0.11", version_format="dpkg", namespace_name="debian:12",
                            base_scores=(7.25, 10.0), cve_ids=("CVE-2024-1",),
                            vulnerabilities=(vuln_of("CVE-2024-1", "High", "3.0.13", link="https://a https://b",
                                                     description="", namespace_name="debian:12", metadata=meta),)),
                    Feature("bash", "5.2"))  # no vulnerabilities: not in the spec
    state = desired_state(snap_of(pod_of("shop", "web-1", WEB_REF), pod_of("shop", "web-2", WEB_REF),
                                  pod_of("blog", "web-1", WEB_REF)),
                          {WEB_REF: scanned(WEB_REF, rep)}, now=RUN_AT)
    assert sorted(state.objects) == [f"blog/{WEB_REF.name}", f"shop/{WEB_REF.name}"]
    obj = state.objects[f"shop/{WEB_REF.name}"]
    manifest = obj.manifest(state.last_update)
    assert manifest["apiVersion"] == "secscan.quay.redhat.com/v1alpha1" and manifest["kind"] == "ImageManifestVuln"
    assert manifest["metadata"]["name"] == "sha256." + "1" * 64
    assert manifest["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "imvjob", "shop/web-1": "true",
                                              "shop/web-2": "true"}
    assert manifest["spec"] == {
        "image": "quay.io/shop/web", "manifest": WEB_DIGEST, "namespaceName": "debian:12",
        "features": [{"name": "openssl", "versionformat": "dpkg", "namespaceName": "debian:12",
                      "version": "3.0.11", "basescores": ["7.2", "10.0"], "cveids": ["CVE-2024-1"],
                      "vulnerabilities": [{"name": "CVE-2024-1", "namespaceName": "debian:12",
                                           "link": "https://a https://b", "fixedby": "3.0.13", "severity": "High",
                                           "metadata": json.dumps(meta, separators=(",", ":"))}]}]}
    assert manifest["status"] == {"highestSeverity": "High", "highCount": 1, "fixableCount": 1,
                                  "affectedPods": {"shop/web-1": ["cri-o://web-10"], "shop/web-2": ["cri-o://web-20"]},
                                  "lastUpdate": "2026-11-29 10:00:48.32847 +0000 UTC"}
    # Every key in affectedPods has its label, and the other way round (the console depends on it).
    pod_labels = {k for k in manifest["metadata"]["labels"] if not k.startswith("app.kubernetes.io")}
    assert pod_labels == set(manifest["status"]["affectedPods"])
    assert HASH_ANNOTATION in manifest["metadata"]["annotations"]


def test_long_pod_names_get_no_label_but_stay_in_affected_pods() -> None:
    long_name = "p" * 64
    rep = report_of(Feature("a", "1", vulnerabilities=(vuln_of("CVE-1", "Low"),)))
    state = desired_state(snap_of(pod_of("ns", long_name, WEB_REF), pod_of("ns", "short", WEB_REF)),
                          {WEB_REF: scanned(WEB_REF, rep)}, now=RUN_AT)
    obj = next(iter(state.objects.values()))
    assert f"ns/{long_name}" in obj.status["affectedPods"]
    assert f"ns/{long_name}" not in obj.labels and "ns/short" in obj.labels


def test_clean_failed_and_unknown_manifests() -> None:
    clean = report_of(Feature("bash", "5.2"))
    results = {WEB_REF: scanned(WEB_REF, clean),
               DB_REF: ScanResult(DB_REF, ScanState.UNREACHABLE, detail="registry unreachable")}
    state = desired_state(snap_of(pod_of("ns", "a", WEB_REF, DB_REF)), results, now=RUN_AT)
    assert state.objects == {}
    assert state.clean == {f"ns/{WEB_REF.name}"}
    kept = state.kept[f"ns/{DB_REF.name}"]
    assert kept.state is ScanState.UNREACHABLE and kept.affected_pods == {"ns/a": ["cri-o://a1"]}


def test_same_digest_in_two_repositories_prefers_the_scanned_one() -> None:
    mirror = ImageRef("mirror.local", "shop/web", WEB_DIGEST)
    rep = report_of(Feature("a", "1", vulnerabilities=(vuln_of("CVE-1", "Low"),)))
    results = {WEB_REF: scanned(WEB_REF, rep), mirror: ScanResult(mirror, ScanState.NO_API)}
    state = desired_state(snap_of(pod_of("ns", "a", mirror), pod_of("ns", "b", WEB_REF)), results, now=RUN_AT)
    obj = state.objects[f"ns/{WEB_REF.name}"]
    assert obj.spec["image"] == "quay.io/shop/web"
    assert set(obj.status["affectedPods"]) == {"ns/a", "ns/b"}


def test_hash_changes_with_content_only() -> None:
    rep = report_of(Feature("a", "1", vulnerabilities=(vuln_of("CVE-1", "Low"),)))
    s1 = desired_state(snap_of(pod_of("ns", "a", WEB_REF)), {WEB_REF: scanned(WEB_REF, rep)}, now=RUN_AT)
    s2 = desired_state(snap_of(pod_of("ns", "a", WEB_REF)), {WEB_REF: scanned(WEB_REF, rep)},
                       now=RUN_AT + dt.timedelta(hours=1))
    s3 = desired_state(snap_of(pod_of("ns", "a", WEB_REF), pod_of("ns", "b", WEB_REF)),
                       {WEB_REF: scanned(WEB_REF, rep)}, now=RUN_AT)
    h = lambda s: next(iter(s.objects.values())).content_hash  # noqa: E731
    assert h(s1) == h(s2) != h(s3)


def test_oversized_objects_are_shrunk_predictably_and_marked() -> None:
    vulns = tuple(vuln_of(f"CVE-{i}", ("Low", "High")[i % 2], description="x" * 2000,
                          metadata={"blob": "y" * 500}) for i in range(800))
    rep = report_of(Feature("big", "1", vulnerabilities=vulns))
    state = desired_state(snap_of(pod_of("ns", "a", WEB_REF)), {WEB_REF: scanned(WEB_REF, rep)}, now=RUN_AT)
    obj = next(iter(state.objects.values()))
    assert len(json.dumps(obj.spec).encode()) <= MAX_OBJECT_BYTES
    assert obj.annotations[SHRUNK_ANNOTATION] == "descriptions-shortened"
    # Status counts always describe the full report.
    assert obj.status["lowCount"] == 400 and obj.status["highCount"] == 400
    spec, steps = shrink(obj.spec, limit=20_000)
    assert len(json.dumps(spec, separators=(",", ":")).encode()) <= 20_000
    kept = [v["severity"] for f in spec["features"] for v in f["vulnerabilities"]]
    # Every High fits, so all are kept; Low entries fill what is left; the rest are counted.
    assert kept.count("High") == 400 and steps[-1] == f"left-out:Low={400 - kept.count('Low')}"



def test_a_lone_surrogate_from_a_registry_is_sized_and_hashed_as_the_object_is_sent() -> None:
    # json.loads accepts the escape "\ud800" (orjson refuses it), so a registry's report can carry one;
    # encode_json sends it as "?": the object is sized and hashed as that, never a crash.
    def state_of(text: str, copies: int = 1):
        vulns = tuple(vuln_of(f"CVE-{i}", "Low", description="x" * 2000 + text, metadata={"k": text})
                      for i in range(copies))
        rep = report_of(Feature("a" + text, "1", vulnerabilities=vulns))
        state = desired_state(snap_of(pod_of("ns", "a", WEB_REF)), {WEB_REF: scanned(WEB_REF, rep)}, now=RUN_AT)
        return next(iter(state.objects.values()))

    assert state_of("\ud800").content_hash == state_of("?").content_hash
    big = state_of("\udc00", copies=800)
    assert len(encode_json(big.spec)) <= MAX_OBJECT_BYTES
    assert big.annotations[SHRUNK_ANNOTATION] == state_of("?", copies=800).annotations[SHRUNK_ANNOTATION]

def test_scope_and_shards_limit_what_the_run_owns() -> None:
    rep = report_of(Feature("a", "1", vulnerabilities=(vuln_of("CVE-1", "Low"),)))
    results = {WEB_REF: scanned(WEB_REF, rep), DB_REF: scanned(DB_REF, rep)}
    state = desired_state(snap_of(pod_of("a", "p", WEB_REF, DB_REF), pod_of("b", "p", WEB_REF), scope=("a",)), results,
                          now=RUN_AT)
    assert {k.split("/")[0] for k in state.objects} == {"a"}
    assert not state.owns("b", WEB_REF.name)
    owners = {shard_index(WEB_REF.name, 3), shard_index(DB_REF.name, 3)}
    for i in range(3):
        sharded = desired_state(snap_of(pod_of("a", "p", WEB_REF, DB_REF)), results, now=RUN_AT, shard=(i, 3))
        assert all(shard_index(o.name, 3) == i for o in sharded.objects.values())
    assert shard_index(WEB_DIGEST, 3) == shard_index(WEB_REF.name, 3)
    assert len(owners) >= 1
