"""The play against a real kube-apiserver: snapshot, apply, idempotence, clean-up, faults.

Registry answers come from a --secscan-dir (saved Quay responses), so that these tests are about
the cluster side; the registry side has its own tests against a registry simulator.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from job import kube as kube_mod
from job import pipeline
from job.log import QuietLog
from job.settings import Settings

REPO = Path(__file__).resolve().parents[2]
IMV = "/apis/secscan.quay.redhat.com/v1alpha1"
WRITES = ("create", "update", "update-status", "patch", "delete")


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def quay_answer(*vulns: tuple[str, str, str]) -> dict:
    """A scanned Quay response with one vulnerable package per (cve, severity, fixed-by)."""
    features = [{"Name": "bash", "Version": "5.2", "VersionFormat": "dpkg", "NamespaceName": "debian:12",
                 "AddedBy": "sha256:0", "BaseScores": [], "CVEIds": [], "Vulnerabilities": []}]
    for i, (cve, severity, fixed) in enumerate(vulns):
        features.append({"Name": f"pkg{i}", "Version": "1.0", "VersionFormat": "dpkg", "NamespaceName": "debian:12",
                         "AddedBy": "sha256:0", "BaseScores": [7.5], "CVEIds": [cve],
                         "Vulnerabilities": [{"Name": cve, "Severity": severity, "NamespaceName": "debian:12",
                                              "Link": f"https://nvd.nist.gov/vuln/detail/{cve}",
                                              "FixedBy": fixed, "Description": f"{cve} description",
                                              "Metadata": {"UpdatedBy": "Debian"}}]})
    return {"status": "scanned", "data": {"Layer": {"Name": "sha256:top", "ParentName": "",
                                                    "NamespaceName": "debian:12", "IndexedByVersion": 4,
                                                    "Features": features}}}


class Cluster:
    """A test's view: its namespaces, its saved registry answers, and runs of the play."""

    def __init__(self, cp, tmp_path: Path, namespaces: list[str]) -> None:
        self.cp, self.tmp, self.namespaces = cp, tmp_path, namespaces
        self.secscan = tmp_path / "secscan"
        self.secscan.mkdir()
        self.kubes: list[kube_mod.Kube] = []

    def answer(self, image_digest: str, doc: dict | str) -> None:
        path = self.secscan / (image_digest.replace(":", ".") + ".json")
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))

    def forget(self, image_digest: str) -> None:
        (self.secscan / (image_digest.replace(":", ".") + ".json")).unlink()

    def run_pod(self, ns: str, name: str, containers: dict[str, str], *, init: dict[str, str] | None = None,
                owner: tuple[str, str] | None = None) -> None:
        """A pod with containers {name: "host/repo@digest"} made Running, as a kubelet would report."""
        owner_refs = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "0" * 8,
                       "controller": True}] if owner else None
        self.cp.create_pod(ns, name, containers=[{"name": c, "image": i.split("@")[0] + ":1"}
                                                 for c, i in containers.items()],
                           init_containers=[{"name": c, "image": i.split("@")[0] + ":1"}
                                            for c, i in (init or {}).items()] or None,
                           owner_references=owner_refs)
        statuses = {c: {"imageID": i, "containerID": f"cri-o://{hashlib.sha1((ns + name + c).encode()).hexdigest()}"}
                    for c, i in {**containers, **(init or {})}.items()}
        self.cp.set_pod_running(ns, name, statuses)

    def delete_pod(self, ns: str, name: str) -> None:
        self.cp.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", params={"gracePeriodSeconds": 0})

    def settings(self, **over) -> Settings:
        base = dict(kubeconfig=str(self.cp.kubeconfig), namespace=tuple(self.namespaces),
                    secscan_dir=str(self.secscan), output=str(self.tmp / "out"), lease_namespace=self.namespaces[0],
                    global_pull_secret="", cluster_name="test")
        base.update(over)
        return Settings(**base)

    def play(self, **over) -> tuple[int, kube_mod.Kube]:
        settings = self.settings(**over)
        client = kube_mod.connect(settings)
        self.kubes.append(client)
        code = pipeline.run_play(settings, QuietLog(), client=client)
        return code, client

    def imvs(self, ns: str) -> dict[str, dict]:
        items = self.cp.call("GET", f"{IMV}/namespaces/{ns}/imagemanifestvulns")["items"]
        return {i["metadata"]["name"]: i for i in items}


def writes(client: kube_mod.Kube) -> dict[str, int]:
    return {verb: client.stats[verb] for verb in WRITES if client.stats[verb]}


@pytest.fixture
def cluster(control_plane, tmp_path, request) -> Cluster:
    import secrets

    names = [f"play-{secrets.token_hex(3)}-{i}" for i in range(2)]
    for ns in names:
        control_plane.create_namespace(ns, annotations={"imvjob/notify": f"{ns}@example.com"})
    return Cluster(control_plane, tmp_path, names)


WEB, DB, TOOLS = digest("web"), digest("db"), digest("tools")
WEB_IMG, DB_IMG, TOOLS_IMG = (f"quay.io/shop/web@{WEB}", f"registry.local:5000/shop/db@{DB}",
                              f"quay.io/shop/tools@{TOOLS}")


def _populate(c: Cluster) -> None:
    a, b = c.namespaces
    c.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1"), ("CVE-2024-2", "Low", "")))
    c.answer(DB, quay_answer(("CVE-2024-3", "Critical", "9.9")))
    c.answer(TOOLS, quay_answer())  # scanned clean: no object
    c.run_pod(a, "web-1", {"web": WEB_IMG}, init={"migrate": DB_IMG}, owner=("StatefulSet", "web"))
    c.run_pod(a, "web-2", {"web": WEB_IMG}, owner=("StatefulSet", "web"))
    c.run_pod(b, "db-0", {"db": DB_IMG, "tools": TOOLS_IMG})


def test_first_run_creates_second_writes_nothing(cluster: Cluster) -> None:
    _populate(cluster)
    a, b = cluster.namespaces
    code, first = cluster.play()
    assert code == 0
    objs_a, objs_b = cluster.imvs(a), cluster.imvs(b)
    assert set(objs_a) == {WEB.replace(":", "."), DB.replace(":", ".")}  # the init container's image counts
    assert set(objs_b) == {DB.replace(":", ".")}
    web = objs_a[WEB.replace(":", ".")]
    assert web["spec"]["image"] == "quay.io/shop/web" and web["spec"]["manifest"] == WEB
    assert web["status"]["highestSeverity"] == "High" and web["status"]["highCount"] == 1
    assert web["status"]["lowCount"] == 1 and web["status"]["fixableCount"] == 1
    assert set(web["status"]["affectedPods"]) == {f"{a}/web-1", f"{a}/web-2"}
    assert web["status"]["affectedPods"][f"{a}/web-1"][0].startswith("cri-o://")
    assert web["metadata"]["labels"][f"{a}/web-1"] == "true"
    assert web["status"]["lastUpdate"].endswith(" +0000 UTC")
    # The console's pod tab: objects selected by "<ns>/<pod>=true".
    selected = cluster.cp.call("GET", f"{IMV}/namespaces/{a}/imagemanifestvulns",
                               params={"labelSelector": f"{a}/web-2=true"})["items"]
    assert [i["metadata"]["name"] for i in selected] == [WEB.replace(":", ".")]
    # Each new object: created bare, its status written, then its pod labels and content hash (a patch).
    assert writes(first) == {"create": 3, "update-status": 3, "patch": 3}
    # No per-pod GETs: pods come from LISTs; the GETs are the two selected namespaces (owner routing).
    assert first.stats["list"] >= 1 and first.stats["get"] == len(cluster.namespaces)

    code, second = cluster.play()
    assert code == 0
    assert writes(second) == {}, "an unchanged cluster must get no writes at all"
    assert second.stats["get"] == len(cluster.namespaces), "unchanged objects are not read in full"
    assert cluster.imvs(a)[WEB.replace(":", ".")]["metadata"]["resourceVersion"] == web["metadata"]["resourceVersion"]


def test_pods_going_away_remove_their_keys_then_the_object(cluster: Cluster) -> None:
    _populate(cluster)
    a, b = cluster.namespaces
    assert cluster.play()[0] == 0
    cluster.delete_pod(a, "web-2")
    code, client = cluster.play()
    assert code == 0
    web = cluster.imvs(a)[WEB.replace(":", ".")]
    assert set(web["status"]["affectedPods"]) == {f"{a}/web-1"}
    assert f"{a}/web-2" not in web["metadata"]["labels"]
    # The label goes before the key, the hash after the status: never a label without its key.
    assert writes(client) == {"patch": 2, "update-status": 1}
    cluster.delete_pod(a, "web-1")
    assert cluster.play()[0] == 0
    assert cluster.imvs(a) == {}  # the init container's DB image went with web-1 too
    assert set(cluster.imvs(b)) == {DB.replace(":", ".")}


def test_changed_image_replaces_the_object(cluster: Cluster) -> None:
    a, _ = cluster.namespaces
    cluster.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1")))
    new = digest("web-v2")
    cluster.answer(new, quay_answer(("CVE-2025-9", "Medium", "")))
    cluster.run_pod(a, "web-1", {"web": WEB_IMG})
    assert cluster.play()[0] == 0
    cluster.delete_pod(a, "web-1")
    cluster.run_pod(a, "web-1b", {"web": f"quay.io/shop/web@{new}"})
    code, client = cluster.play()
    assert code == 0 and set(cluster.imvs(a)) == {new.replace(":", ".")}
    assert writes(client) == {"create": 1, "update-status": 1, "patch": 1, "delete": 1}


def test_a_failed_scan_keeps_the_object_and_exits_2(cluster: Cluster) -> None:
    _populate(cluster)
    a, _ = cluster.namespaces
    assert cluster.play()[0] == 0
    before = cluster.imvs(a)[WEB.replace(":", ".")]
    cluster.answer(WEB, "<html>502 Bad Gateway</html>")  # garbage from the registry: the job's error
    code, client = cluster.play()
    assert code == 2
    after = cluster.imvs(a)[WEB.replace(":", ".")]
    assert after["spec"] == before["spec"] and after["status"] == before["status"]
    assert writes(client) == {}
    # A registry-side state (no report yet) keeps what was known too, and pods are still followed.
    cluster.forget(WEB)
    cluster.delete_pod(a, "web-2")
    assert cluster.play()[0] == 0
    kept = cluster.imvs(a)[WEB.replace(":", ".")]
    assert kept["spec"] == before["spec"]
    assert set(kept["status"]["affectedPods"]) == {f"{a}/web-1"}
    assert f"{a}/web-2" not in kept["metadata"]["labels"]


def test_check_changes_nothing_but_runs_server_validation(cluster: Cluster, capsys) -> None:
    _populate(cluster)
    a, b = cluster.namespaces
    code, client = cluster.play(check=True, diff=True)
    assert code == 0
    assert cluster.imvs(a) == {} and cluster.imvs(b) == {}
    assert client.stats["create"] == 3  # sent, with dryRun=All
    out = capsys.readouterr().out
    assert f"+++ {a}/{WEB.replace(':', '.')} (desired)" in out and "CVE-2024-1" in out


def test_objects_of_others_are_left_alone_unless_adopted(cluster: Cluster) -> None:
    a, _ = cluster.namespaces
    cluster.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1")))
    cluster.run_pod(a, "web-1", {"web": WEB_IMG})
    foreign = {"apiVersion": "secscan.quay.redhat.com/v1alpha1", "kind": "ImageManifestVuln",
               "metadata": {"name": WEB.replace(":", "."), "namespace": a, "labels": {f"{a}/old-pod": "true"}},
               "spec": {"image": "quay.io/shop/web", "manifest": WEB}}
    cluster.cp.call("POST", f"{IMV}/namespaces/{a}/imagemanifestvulns", json=foreign)
    code, client = cluster.play()
    assert code == 0 and writes(client) == {}
    assert "app.kubernetes.io/managed-by" not in cluster.imvs(a)[WEB.replace(":", ".")]["metadata"]["labels"]
    code, client = cluster.play(adopt=True)
    obj = cluster.imvs(a)[WEB.replace(":", ".")]
    assert code == 0 and obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "imvjob"
    assert f"{a}/old-pod" not in obj["metadata"]["labels"] and f"{a}/web-1" in obj["metadata"]["labels"]
    assert obj["status"]["highestSeverity"] == "High"


def test_namespaces_outside_the_scope_are_never_touched(cluster: Cluster) -> None:
    _populate(cluster)
    a, b = cluster.namespaces
    assert cluster.play()[0] == 0
    cluster.delete_pod(b, "db-0")
    assert cluster.play(namespace=(a,))[0] == 0
    assert set(cluster.imvs(b)) == {DB.replace(":", ".")}  # b is not this run's to clean
    assert cluster.play()[0] == 0
    assert cluster.imvs(b) == {}


def test_a_second_run_cannot_apply_while_one_holds_the_lease(cluster: Cluster) -> None:
    _populate(cluster)
    settings = cluster.settings()
    holder = kube_mod.connect(settings)
    with holder.lease(namespace=settings.lease_namespace, name=settings.lease_name, wait=0):
        from job.errors import LeaseHeld

        with pytest.raises(LeaseHeld, match="another run"):
            cluster.play(lease_wait=0)
    assert cluster.imvs(cluster.namespaces[0]) == {}
    assert cluster.play()[0] == 0  # released on exit: the next run applies


def test_concurrent_runs_apply_once(cluster: Cluster) -> None:
    _populate(cluster)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(cluster.play(lease_wait=30)[0])
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [0, 0]
    creates = sorted(c.stats["create"] for c in cluster.kubes)
    assert creates == [0, 3], "the second run waited for the lease, then found nothing to do"


def test_cli_recap_and_exit_status(cluster: Cluster) -> None:
    _populate(cluster)
    env = {**os.environ, "IMVJOB_KUBECONFIG": str(cluster.cp.kubeconfig), "IMVJOB_LEASE_NAMESPACE": cluster.namespaces[0]}
    cmd = [sys.executable, "-m", "job", "run", "--secscan-dir", str(cluster.secscan), "--output",
           str(cluster.tmp / "cli"), "--global-pull-secret", "", *sum((["--namespace", n] for n in cluster.namespaces), [])]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "imvjob: ok=3 created=3 updated=0 deleted=0 unchanged=0 failed=0" in proc.stderr
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "imvjob: ok=3 created=0 updated=0 deleted=0 unchanged=3 failed=0" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "job", "run", "--kubeconfig", str(cluster.tmp / "missing")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "cannot load Kubernetes configuration" in bad.stderr
