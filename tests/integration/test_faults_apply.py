"""Never lose, never pin a finding: the cluster side of the job's promises, on the real API server.

- A run removes an object, or a pod from affectedPods, only for pods it listed and knows are
  gone: a selector that matches nothing or only some pods, and pods it could not read, cost nothing.
- No content hash vouches for content the object does not hold: a run cut between two writes, or
  an object edited by someone else, is put back on the next run; an unchanged cluster still costs
  no write and no full read.
- A retry of a run killed while applying waits for the dead run's Lease instead of failing.
"""
from __future__ import annotations

import hashlib
import time

import pytest
from test_play import IMV, Cluster, digest, quay_answer, writes

from job import kube as kube_mod
from job import pipeline
from job.errors import Forbidden
from job.log import QuietLog

pytestmark = pytest.mark.fault

WEB, DB, TOOLS = digest("f-web"), digest("f-db"), digest("f-tools")
WEB_IMG, DB_IMG = f"quay.io/shop/web@{WEB}", f"quay.io/shop/db@{DB}"
N_WEB, N_DB = WEB.replace(":", "."), DB.replace(":", ".")


@pytest.fixture
def cluster(control_plane, tmp_path) -> Cluster:
    import secrets

    names = [f"fault-{secrets.token_hex(3)}-{i}" for i in range(2)]
    for ns in names:
        control_plane.create_namespace(ns)
    return Cluster(control_plane, tmp_path, names)


def run_pod(c: Cluster, ns: str, name: str, containers: dict[str, str], *, labels: dict[str, str]) -> None:
    c.cp.create_pod(ns, name, labels=labels,
                    containers=[{"name": n, "image": i.split("@")[0] + ":1"} for n, i in containers.items()])
    c.cp.set_pod_running(ns, name, {n: {"imageID": i, "containerID": "cri-o://" + hashlib.sha1(
        f"{ns}/{name}/{n}".encode()).hexdigest()} for n, i in containers.items()})


def populate(c: Cluster) -> str:
    a = c.namespaces[0]
    c.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1")))
    c.answer(DB, quay_answer(("CVE-2024-3", "Critical", "9.9")))
    run_pod(c, a, "web-1", {"web": WEB_IMG}, labels={"app": "web"})
    run_pod(c, a, "web-2", {"web": WEB_IMG, "db": DB_IMG}, labels={"app": "web"})
    run_pod(c, a, "db-0", {"db": DB_IMG}, labels={"app": "db"})
    assert c.play()[0] == 0
    return a


def contents(c: Cluster, ns: str) -> dict[str, tuple]:
    """What a user reads of each object: its pod labels, spec and status (lastUpdate aside)."""
    out = {}
    for name, obj in c.imvs(ns).items():
        status = {k: v for k, v in (obj.get("status") or {}).items() if k != "lastUpdate"}
        labels = {k: v for k, v in obj["metadata"].get("labels", {}).items() if k.startswith(ns + "/")}
        out[name] = (labels, obj.get("spec"), status)
    return out


# --- narrowed runs ---------------------------------------------------------------------------


def test_a_selector_that_matches_no_pod_deletes_nothing(cluster: Cluster) -> None:
    a = populate(cluster)
    before = contents(cluster, a)
    assert set(before) == {N_WEB, N_DB}
    code, client = cluster.play(selector="app=typo")
    assert code == 0
    assert contents(cluster, a) == before
    assert writes(client) == {}


def test_a_selector_keeps_the_pods_it_did_not_list(cluster: Cluster) -> None:
    a = populate(cluster)
    before = contents(cluster, a)
    code, client = cluster.play(selector="app=web")
    assert code == 0
    assert contents(cluster, a) == before, "db-0 was not looked at: its findings stay"
    assert writes(client) == {}
    # A pod the selector lists that no longer runs DB is dropped from DB's object, db-0 stays.
    cluster.delete_pod(a, "web-2")
    run_pod(cluster, a, "web-2", {"web": WEB_IMG}, labels={"app": "web"})
    assert cluster.play(selector="app=web")[0] == 0
    db = cluster.imvs(a)[N_DB]
    assert set(db["status"]["affectedPods"]) == {f"{a}/db-0"}
    assert f"{a}/web-2" not in db["metadata"]["labels"] and db["metadata"]["labels"][f"{a}/db-0"] == "true"
    # A pod the selector lists that ran WEB and is gone... stays unknown to it until a full run.
    cluster.delete_pod(a, "db-0")
    assert cluster.play(selector="app=web")[0] == 0
    assert set(cluster.imvs(a)[N_DB]["status"]["affectedPods"]) == {f"{a}/db-0"}
    assert cluster.play()[0] == 0
    assert set(cluster.imvs(a)) == {N_WEB}, "a full run knows db-0 is gone"


def test_a_pod_whose_manifest_cannot_be_known_keeps_its_findings(cluster: Cluster) -> None:
    a = populate(cluster)
    before = contents(cluster, a)
    # The runtime now reports only an image ID, and the image is not pinned by digest.
    status = cluster.cp.call("GET", f"/api/v1/namespaces/{a}/pods/db-0")["status"]
    status["containerStatuses"][0]["imageID"] = "sha256:" + "e" * 64
    cluster.cp.call("PUT", f"/api/v1/namespaces/{a}/pods/db-0/status",
                    json={**cluster.cp.call("GET", f"/api/v1/namespaces/{a}/pods/db-0"), "status": status})
    code, client = cluster.play()
    assert code == 0
    assert contents(cluster, a) == before
    assert writes(client) == {}


# --- the content hash ------------------------------------------------------------------------


class StatusRefused(kube_mod.Kube):
    """The API server refuses status writes (RBAC without imagemanifestvulns/status, say)."""

    def update_imv_status(self, obj: dict, *, dry_run: bool) -> dict:
        raise Forbidden("PUT status: 403 forbidden", status=403)


def _play_with(c: Cluster, kube_class, **over) -> int:
    settings = c.settings(**over)
    client = kube_mod.connect(settings)
    client.__class__ = kube_class
    c.kubes.append(client)
    return pipeline.run_play(settings, QuietLog(), client=client)


def test_a_run_cut_between_spec_and_status_leaves_no_hash_that_pins_it(cluster: Cluster) -> None:
    a = populate(cluster)
    first = contents(cluster, a)
    cluster.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1"), ("CVE-2025-7", "Critical", "2.0")))
    assert _play_with(cluster, StatusRefused) == 2
    # The registry answers as before the cut run: the object must say that again, not stay half-new.
    cluster.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1")))
    assert cluster.play()[0] == 0
    assert contents(cluster, a) == first
    assert writes(cluster.play()[1]) == {}


def test_a_spec_edited_by_hand_is_put_back(cluster: Cluster) -> None:
    a = populate(cluster)
    first = contents(cluster, a)
    path = f"{IMV}/namespaces/{a}/imagemanifestvulns/{N_WEB}"
    cluster.cp.call("PATCH", path, json={"spec": {"features": [{"name": "forged", "version": "0"}]}},
                    headers={"Content-Type": "application/merge-patch+json"})
    assert cluster.play()[0] == 0
    assert contents(cluster, a) == first
    code, client = cluster.play()
    assert writes(client) == {} and client.stats["get"] == len(cluster.namespaces), "back to no reads"


@pytest.mark.parametrize("edit", ["drop-pod-key", "change-count", "add-pod-key", "drop-count"])
def test_a_status_edited_by_hand_is_put_back(cluster: Cluster, edit: str) -> None:
    a = populate(cluster)
    first = contents(cluster, a)
    path = f"{IMV}/namespaces/{a}/imagemanifestvulns/{N_WEB}/status"
    obj = cluster.cp.call("GET", path)
    status = obj["status"]
    if edit == "drop-pod-key":  # leaves the pod label without its key
        status["affectedPods"].pop(f"{a}/web-1")
    elif edit == "change-count":
        status["highCount"] = 7
    elif edit == "add-pod-key":
        status["affectedPods"][f"{a}/ghost"] = ["cri-o://0"]
    else:
        status.pop("fixableCount")
    cluster.cp.call("PUT", path, json=obj, params={"fieldManager": "kubectl-edit"})
    assert contents(cluster, a) != first
    assert cluster.play()[0] == 0
    assert contents(cluster, a) == first
    code, client = cluster.play()
    assert writes(client) == {} and client.stats["get"] == len(cluster.namespaces), "back to no reads"


def test_labels_edited_by_hand_are_put_back(cluster: Cluster) -> None:
    a = populate(cluster)
    first = contents(cluster, a)
    path = f"{IMV}/namespaces/{a}/imagemanifestvulns/{N_WEB}"
    cluster.cp.call("PATCH", path, headers={"Content-Type": "application/merge-patch+json"},
                    json={"metadata": {"labels": {f"{a}/web-1": None, f"{a}/ghost": "true", "team": "x"}}})
    assert cluster.play()[0] == 0
    assert contents(cluster, a) == first
    assert cluster.imvs(a)[N_WEB]["metadata"]["labels"]["team"] == "x", "other writers' labels stay"
    assert writes(cluster.play()[1]) == {}


# --- the Lease -------------------------------------------------------------------------------


def test_a_retry_after_a_killed_run_waits_for_its_lease(cluster: Cluster) -> None:
    a = cluster.namespaces[0]
    cluster.answer(WEB, quay_answer(("CVE-2024-1", "High", "1.1")))
    run_pod(cluster, a, "web-1", {"web": WEB_IMG}, labels={"app": "web"})
    # The killed run renewed its Lease 50 s ago: it lapses 10 s from now.
    renewed = time.time() - 50
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(renewed)) + ".000000Z"
    cluster.cp.call("POST", f"/apis/coordination.k8s.io/v1/namespaces/{a}/leases", json={
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "imvjob", "namespace": a},
        "spec": {"holderIdentity": "imvjob-killed-pod-1-dead", "leaseDurationSeconds": 60,
                 "acquireTime": stamp, "renewTime": stamp}})
    started = time.monotonic()
    assert cluster.play()[0] == 0  # the default wait
    assert 5 < time.monotonic() - started < 60
    assert set(cluster.imvs(a)) == {N_WEB}


class ListCutHalfWay(kube_mod.Kube):
    """The connection drops after the first page of pods (the continue token then expires, say)."""

    def list_pages(self, path: str, **kwargs):
        pages = super().list_pages(path, **kwargs)
        if not path.endswith("/pods"):
            yield from pages
            return
        yield next(pages)
        raise kube_mod.KubeError(f"GET {path}: 410 the provided continue parameter is too old", status=410)


def test_a_pod_list_that_fails_half_way_changes_nothing(cluster: Cluster) -> None:
    a = populate(cluster)
    before = contents(cluster, a)
    with pytest.raises(kube_mod.KubeError, match="continue"):
        _play_with(cluster, ListCutHalfWay, page_size=1)
    assert contents(cluster, a) == before
    assert writes(cluster.kubes[-1]) == {}
