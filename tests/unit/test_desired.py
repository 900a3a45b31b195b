"""The desired ImageManifestVulns, rule by rule of docs/compatibility.md."""
from __future__ import annotations

import datetime as dt
import json

from job.desired import HASH_ANNOTATION, SHRUNK_ANNOTATION, desired_state, go_time_string, shard_index
from job.imv_spec import MAX_OBJECT_BYTES, severity_status, shrink
from job.model import (Container, ContainerKind, Feature, ImageRef, Pod, ScanResult, ScanState, Snapshot,
                       Vulnerability, VulnReport, Workload)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
NOW = dt.datetime(2026, 11, 29, 10, 0, 48, 328470, tzinfo=dt.timezone.utc)
REF1 = ImageRef("quay.io", "shop/web", D1)
REF2 = ImageRef("quay.io", "shop/db", D2)


def pod(ns: str, name: str, *refs: ImageRef, ids: tuple[str, ...] = ()) -> Pod:
    containers = tuple(Container(f"c{i}", ContainerKind.CONTAINER, str(r), ids[i] if i < len(ids) else f"cri-o://{name}{i}", r)
                       for i, r in enumerate(refs))
    return Pod(ns, name, "uid", Workload("Deployment", "web"), "default", (), containers)


def snap(*pods: Pod, scope=None) -> Snapshot:
    return Snapshot(taken_at="2026-11-29T10:00:00Z", cluster="test", pods=list(pods), namespaces={}, problems=[],
                    scope=scope)


def vuln(name: str, severity: str, fixed: str = "", **kw) -> Vulnerability:
    return Vulnerability(name=name, severity=severity, fixed_by=fixed, **kw)


def report(*features: Feature, ns: str = "debian:12") -> VulnReport:
    return VulnReport(namespace_name=ns, features=features)


def scanned(ref: ImageRef, rep: VulnReport) -> ScanResult:
    return ScanResult(ref, ScanState.SCANNED, rep, backend="test")


def test_go_time_string_matches_go() -> None:
    assert go_time_string(NOW) == "2026-11-29 10:00:48.32847 +0000 UTC"
    assert go_time_string(NOW.replace(microsecond=0)) == "2026-11-29 10:00:48 +0000 UTC"
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert go_time_string(dt.datetime(2026, 1, 1, 2, 0, 0, 500000, tzinfo=plus2)) == "2026-01-01 00:00:00.5 +0000 UTC"


def test_counts_are_entries_not_names_and_zero_counts_are_omitted() -> None:
    features = [Feature("openssl", "3.0", vulnerabilities=(vuln("CVE-1", "High", "3.1"), vuln("CVE-2", "Low"))),
                Feature("curl", "7", vulnerabilities=(vuln("CVE-1", "High"), vuln("CVE-3", "Critical", "8")))]
    assert severity_status(features) == {"highestSeverity": "Critical", "lowCount": 1, "highCount": 2,
                                         "criticalCount": 1, "fixableCount": 2}
    assert severity_status([]) == {}


def test_one_object_per_namespace_and_digest_with_exact_shape() -> None:
    meta = {"UpdatedBy": "Debian", "NVD": {"CVSSv3": {"Score": 7.5, "Vectors": "AV:N"}}}
    rep = report(Feature("openssl", "3.0.11", version_format="dpkg", namespace_name="debian:12",
                         base_scores=(7.25, 10.0), cve_ids=("CVE-2024-1",),
                         vulnerabilities=(vuln("CVE-2024-1", "High", "3.0.13", link="https://a https://b",
                                               description="", namespace_name="debian:12", metadata=meta),)),
                 Feature("bash", "5.2"))  # no vulnerabilities: not in the spec
    state = desired_state(snap(pod("shop", "web-1", REF1), pod("shop", "web-2", REF1), pod("blog", "web-1", REF1)),
                          {REF1: scanned(REF1, rep)}, now=NOW)
    assert sorted(state.objects) == [f"blog/{REF1.name}", f"shop/{REF1.name}"]
    obj = state.objects[f"shop/{REF1.name}"]
    manifest = obj.manifest(state.last_update)
    assert manifest["apiVersion"] == "secscan.quay.redhat.com/v1alpha1" and manifest["kind"] == "ImageManifestVuln"
    assert manifest["metadata"]["name"] == "sha256." + "1" * 64
    assert manifest["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "imvjob", "shop/web-1": "true",
                                              "shop/web-2": "true"}
    assert manifest["spec"] == {
        "image": "quay.io/shop/web", "manifest": D1, "namespaceName": "debian:12",
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
    rep = report(Feature("a", "1", vulnerabilities=(vuln("CVE-1", "Low"),)))
    state = desired_state(snap(pod("ns", long_name, REF1), pod("ns", "short", REF1)), {REF1: scanned(REF1, rep)},
                          now=NOW)
    obj = next(iter(state.objects.values()))
    assert f"ns/{long_name}" in obj.status["affectedPods"]
    assert f"ns/{long_name}" not in obj.labels and "ns/short" in obj.labels


def test_clean_failed_and_unknown_manifests() -> None:
    clean = report(Feature("bash", "5.2"))
    results = {REF1: scanned(REF1, clean),
               REF2: ScanResult(REF2, ScanState.UNREACHABLE, detail="registry unreachable")}
    state = desired_state(snap(pod("ns", "a", REF1, REF2)), results, now=NOW)
    assert state.objects == {}
    assert state.clean == {f"ns/{REF1.name}"}
    kept = state.kept[f"ns/{REF2.name}"]
    assert kept.state is ScanState.UNREACHABLE and kept.affected_pods == {"ns/a": ["cri-o://a1"]}


def test_same_digest_in_two_repositories_prefers_the_scanned_one() -> None:
    mirror = ImageRef("mirror.local", "shop/web", D1)
    rep = report(Feature("a", "1", vulnerabilities=(vuln("CVE-1", "Low"),)))
    results = {REF1: scanned(REF1, rep), mirror: ScanResult(mirror, ScanState.NO_API)}
    state = desired_state(snap(pod("ns", "a", mirror), pod("ns", "b", REF1)), results, now=NOW)
    obj = state.objects[f"ns/{REF1.name}"]
    assert obj.spec["image"] == "quay.io/shop/web"
    assert set(obj.status["affectedPods"]) == {"ns/a", "ns/b"}


def test_hash_changes_with_content_only() -> None:
    rep = report(Feature("a", "1", vulnerabilities=(vuln("CVE-1", "Low"),)))
    s1 = desired_state(snap(pod("ns", "a", REF1)), {REF1: scanned(REF1, rep)}, now=NOW)
    s2 = desired_state(snap(pod("ns", "a", REF1)), {REF1: scanned(REF1, rep)}, now=NOW + dt.timedelta(hours=1))
    s3 = desired_state(snap(pod("ns", "a", REF1), pod("ns", "b", REF1)), {REF1: scanned(REF1, rep)}, now=NOW)
    h = lambda s: next(iter(s.objects.values())).content_hash  # noqa: E731
    assert h(s1) == h(s2) != h(s3)


def test_oversized_objects_are_shrunk_predictably_and_marked() -> None:
    vulns = tuple(vuln(f"CVE-{i}", ("Low", "High")[i % 2], description="x" * 2000,
                       metadata={"blob": "y" * 500}) for i in range(800))
    rep = report(Feature("big", "1", vulnerabilities=vulns))
    state = desired_state(snap(pod("ns", "a", REF1)), {REF1: scanned(REF1, rep)}, now=NOW)
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


def test_scope_and_shards_limit_what_the_run_owns() -> None:
    rep = report(Feature("a", "1", vulnerabilities=(vuln("CVE-1", "Low"),)))
    results = {REF1: scanned(REF1, rep), REF2: scanned(REF2, rep)}
    state = desired_state(snap(pod("a", "p", REF1, REF2), pod("b", "p", REF1), scope=("a",)), results, now=NOW)
    assert {k.split("/")[0] for k in state.objects} == {"a"}
    assert not state.owns("b", REF1.name)
    owners = {shard_index(REF1.name, 3), shard_index(REF2.name, 3)}
    for i in range(3):
        sharded = desired_state(snap(pod("a", "p", REF1, REF2)), results, now=NOW, shard=(i, 3))
        assert all(shard_index(o.name, 3) == i for o in sharded.objects.values())
    assert shard_index(D1, 3) == shard_index(REF1.name, 3)
    assert len(owners) >= 1
