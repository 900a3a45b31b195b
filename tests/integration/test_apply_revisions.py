"""What the API server stores of each write of apply: every revision, as a watch replays it.

etcd keeps a full copy of an object for each write until the API server compacts (every 5 minutes),
so a first run on a large cluster grows etcd by (writes per object) x (object size). Each revision
is also what a reader (the console, `oc get vuln -w`) may see at that moment:
- no revision has a pod label without its key in status.affectedPods;
- no revision carries a content hash for content it does not hold;
- a new object's features (nearly all of its bytes) are stored once, by its last write.
"""
from __future__ import annotations

import json
import time

import pytest
from test_play import IMV, Cluster, digest, quay_answer, writes

from job import kube as kube_mod
from job import pipeline
from job.desired import HASH_ANNOTATION
from job.errors import Forbidden
from job.log import QuietLog

WEB, DB = digest("r-web"), digest("r-db")
N_WEB, N_DB = WEB.replace(":", "."), DB.replace(":", ".")


@pytest.fixture
def cluster(control_plane, tmp_path) -> Cluster:
    import secrets

    names = [f"revs-{secrets.token_hex(3)}"]
    control_plane.create_namespace(names[0])
    return Cluster(control_plane, tmp_path, names)


def _populate(c: Cluster) -> str:
    ns = c.namespaces[0]
    c.answer(WEB, quay_answer(*((f"CVE-2024-{i}", "High", "1.1") for i in range(40))))
    c.answer(DB, quay_answer(("CVE-2024-900", "Critical", "9.9")))
    c.run_pod(ns, "web-1", {"web": f"quay.io/shop/web@{WEB}"})
    c.run_pod(ns, "web-2", {"web": f"quay.io/shop/web@{WEB}", "db": f"quay.io/shop/db@{DB}"})
    return ns


def _resource_version(c: Cluster, ns: str) -> str:
    for _ in range(100):  # a kind just installed answers 429 until its watch cache has started
        resp = c.cp.request("GET", f"{IMV}/namespaces/{ns}/imagemanifestvulns")
        if resp.status_code != 429:
            break
        time.sleep(0.1)
    assert resp.status_code == 200, resp.text
    return resp.json()["metadata"]["resourceVersion"]


def _revisions(c: Cluster, ns: str, since: str) -> list[dict]:
    """Every revision stored since `since`, in order (the API server's watch replays them)."""
    resp = c.cp.request("GET", f"{IMV}/namespaces/{ns}/imagemanifestvulns",
                        params={"watch": "1", "resourceVersion": since, "timeoutSeconds": "2"})
    assert resp.status_code == 200, resp.text
    events = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
    assert all(e["type"] in ("ADDED", "MODIFIED") for e in events), [e["type"] for e in events]
    return [e["object"] for e in events]


def _pod_labels(obj: dict, ns: str) -> dict[str, str]:
    return {k: v for k, v in (obj["metadata"].get("labels") or {}).items() if k.startswith(ns + "/")}


def _content(obj: dict, ns: str) -> tuple:
    status = {k: v for k, v in (obj.get("status") or {}).items() if k != "lastUpdate"}
    return _pod_labels(obj, ns), obj.get("spec"), status


def _check_every_revision(revisions: list[dict], final: dict[str, dict], ns: str) -> None:
    for obj in revisions:
        name = obj["metadata"]["name"]
        keys = set((obj.get("status") or {}).get("affectedPods") or {})
        assert set(_pod_labels(obj, ns)) <= keys, f"{name}: a pod label without its affectedPods key"
        if HASH_ANNOTATION in (obj["metadata"].get("annotations") or {}):
            assert _content(obj, ns) == _content(final[name], ns), f"{name}: a hash over content it does not hold"


def test_a_new_object_is_stored_whole_once_and_every_revision_keeps_the_promises(cluster: Cluster) -> None:
    ns = _populate(cluster)
    since = _resource_version(cluster, ns)
    code, client = cluster.play()
    assert code == 0
    final = cluster.imvs(ns)
    assert set(final) == {N_WEB, N_DB} and len(final[N_WEB]["spec"]["features"]) == 40
    revisions = _revisions(cluster, ns, since)
    _check_every_revision(revisions, final, ns)
    for name, obj in final.items():
        mine = [r for r in revisions if r["metadata"]["name"] == name]
        assert len(mine) == 3, f"{name}: created, its status, then the rest ({len(mine)} writes)"
        assert [bool(r["spec"].get("features")) for r in mine] == [False, False, True], \
            f"{name}: its features must be stored once, with its pod labels and hash"
        assert mine[-1]["metadata"]["annotations"][HASH_ANNOTATION].endswith(":2")
    assert writes(client) == {"create": 2, "update-status": 2, "patch": 2}
    # What was sent: about the objects once (the features once), not once per write.
    objects = sum(len(json.dumps(o["spec"]) + json.dumps(o["status"])) for o in final.values())
    assert client.bytes_sent < 1.3 * objects + 3000  # the Lease's writes: a few hundred bytes each


def test_a_pods_change_keeps_the_promises_in_every_revision(cluster: Cluster) -> None:
    ns = _populate(cluster)
    assert cluster.play()[0] == 0
    cluster.delete_pod(ns, "web-1")
    cluster.run_pod(ns, "web-3", {"web": f"quay.io/shop/web@{WEB}"})
    cluster.answer(WEB, quay_answer(("CVE-2025-1", "Critical", "2.0")))
    since = _resource_version(cluster, ns)
    assert cluster.play()[0] == 0
    final = cluster.imvs(ns)
    assert set(_pod_labels(final[N_WEB], ns)) == {f"{ns}/web-2", f"{ns}/web-3"}
    _check_every_revision(_revisions(cluster, ns, since), final, ns)
    assert writes(cluster.play()[1]) == {}


class LastWriteRefused(kube_mod.Kube):
    """The API server refuses the write that brings a new object's features, pod labels and hash."""

    def patch_imv(self, namespace: str, name: str, patch: dict, *, dry_run: bool) -> dict:
        raise Forbidden("PATCH: 403 forbidden", status=403)


def test_a_run_cut_before_the_last_write_is_repaired_by_the_next(cluster: Cluster) -> None:
    ns = _populate(cluster)
    settings = cluster.settings()
    client = kube_mod.connect(settings)
    client.__class__ = LastWriteRefused
    assert pipeline.run_play(settings, QuietLog(), client=client) == 2
    half = cluster.imvs(ns)
    assert set(half) == {N_WEB, N_DB}
    for obj in half.values():  # found by no pod, vouched by no hash: the next run compares in full
        assert not _pod_labels(obj, ns) and HASH_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert cluster.play()[0] == 0
    final = cluster.imvs(ns)
    assert len(final[N_WEB]["spec"]["features"]) == 40
    assert set(_pod_labels(final[N_WEB], ns)) == {f"{ns}/web-1", f"{ns}/web-2"}
    code, again = cluster.play()
    assert writes(again) == {} and again.stats["get"] == 1, "back to no writes and no full reads"
