"""Sharded runs against a real kube-apiserver: shards of an Indexed Job applying at once, each
only its own objects, never another shard's; the last one merges their files into the one
report, which says what an unsharded run says."""
from __future__ import annotations

import json
import threading

import pytest
from registry_sim import RecordingLog
from test_play import IMV, Cluster, digest, quay_answer

from job import pipeline
from job import kube as kube_mod
from job.desired import shard_index
from job.settings import Settings

SHARDS = 3
WRITES = ("create", "update", "update-status", "patch", "delete")


@pytest.fixture
def cluster(control_plane, tmp_path) -> Cluster:
    import secrets

    names = [f"shard-{secrets.token_hex(3)}-{i}" for i in range(2)]
    for ns in names:
        control_plane.create_namespace(ns, annotations={"imvjob/notify": f"{ns}@example.com"})
    return Cluster(control_plane, tmp_path, names)


def _populate(c: Cluster) -> dict[str, str]:
    """Twelve manifests over two namespaces, some in both; {pod: its manifest's digest}."""
    a, b = c.namespaces
    where = {}
    for i in range(12):
        d = digest(f"app-{i}")
        c.answer(d, quay_answer((f"CVE-2024-{i}", ("High", "Low", "Critical")[i % 3], "1.1" if i % 2 else "")))
        for ns in ((a, b) if i % 4 == 0 else (a,) if i % 2 else (b,)):
            c.run_pod(ns, f"app-{i}", {"app": f"quay.io/shop/app{i}@{d}"})
            where[f"{ns}/app-{i}"] = d
    return where


def _objects(c: Cluster) -> set[str]:
    return {f"{ns}/{name}" for ns in c.namespaces for name in c.imvs(ns)}


def _play(c: Cluster, log=None, **over) -> tuple[int, kube_mod.Kube]:
    settings = c.settings(**over)
    client = kube_mod.connect(settings)
    return pipeline.run_play(settings, log or RecordingLog(), client=client), client


def _writes(client: kube_mod.Kube) -> dict[str, int]:
    return {v: client.stats[v] for v in WRITES if client.stats[v]}


def test_shards_apply_at_once_their_own_objects_and_the_last_one_merges(cluster: Cluster, monkeypatch) -> None:
    _populate(cluster)
    monkeypatch.setenv("IMVJOB_RUN_ID", "imvjob-manual-1")
    out = cluster.tmp / "shared"
    # Shard 0 alone first: exactly its objects, and no report yet.
    code, client = _play(cluster, shard=f"0/{SHARDS}", output=str(out))
    assert code == 0
    mine = _objects(cluster)
    assert mine and all(shard_index(key.split("/")[1], SHARDS) == 0 for key in mine)
    assert not (out / "summary.json").exists() and (out / "shard-0" / "scan.json").exists()
    # The two others at once (each under its own Lease); the last to finish merges, once.
    logs, codes = [RecordingLog(), RecordingLog()], []
    threads = [threading.Thread(target=lambda i=i: codes.append(_play(cluster, logs[i - 1], shard=f"{i}/{SHARDS}",
                                                                         output=str(out))[0]))
               for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert codes == [0, 0]
    merges = [log for log in logs if "TASK [merge]" in log.messages()]
    assert len(merges) == 1
    assert any(m.startswith("imvjob: ok=") for m in merges[0].messages())
    everything = _objects(cluster)
    assert {shard_index(key.split("/")[1], SHARDS) for key in everything} == {0, 1, 2}
    merged = json.loads((out / "summary.json").read_text())
    assert merged["unscanned"] == []  # no shard's images are "not scanned" in the merged report
    assert (out / "report.html").exists() and (out / "report.xlsx").exists()

    # An unsharded run of the same cluster: nothing to change, and the same totals.
    code, client = _play(cluster, output=str(cluster.tmp / "whole"))
    assert code == 0 and _writes(client) == {}
    whole = json.loads((cluster.tmp / "whole" / "summary.json").read_text())
    assert merged["totals"] == whole["totals"]
    assert merged["apply"]["created"] == len(everything) and whole["apply"]["unchanged"] == len(everything)
    assert merged["findings"] == whole["findings"]


def test_a_shard_never_touches_another_shards_objects(cluster: Cluster, monkeypatch) -> None:
    where = _populate(cluster)
    monkeypatch.setenv("IMVJOB_RUN_ID", "imvjob-1")
    assert _play(cluster)[0] == 0  # unsharded: every object
    before = _objects(cluster)
    # A pod goes away whose manifest runs nowhere else in its namespace, and is shard 1's.
    pod, gone = next((p, d) for p, d in where.items()
                     if shard_index(d, SHARDS) == 1 and list(where.values()).count(d) == 1)
    ns, name = pod.split("/")
    cluster.delete_pod(ns, name)
    stale = f"{ns}/{gone.replace(':', '.')}"
    for index in (0, 2):  # the other shards leave it alone, and write nothing else either
        code, client = _play(cluster, shard=f"{index}/{SHARDS}", output=str(cluster.tmp / "shared"))
        assert code == 0 and _writes(client) == {}
        assert _objects(cluster) == before
    code, client = _play(cluster, shard=f"1/{SHARDS}", output=str(cluster.tmp / "shared"))
    assert code == 0 and _writes(client) == {"delete": 1}
    assert _objects(cluster) == before - {stale}


def test_an_indexed_job_pod_takes_its_index_and_merge_by_hand_needs_every_shard(cluster: Cluster,
                                                                                monkeypatch) -> None:
    _populate(cluster)
    monkeypatch.delenv("IMVJOB_RUN_ID", raising=False)  # no run id: no automatic merge
    out = cluster.tmp / "shared"
    for index in range(2):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        log = RecordingLog()
        assert _play(cluster, log, shards=2, output=str(out))[0] == 0
        assert any("imvjob merge" in m for m in log.messages())
    settings = Settings(output=str(out), cluster_name="test")
    assert pipeline.run_merge(settings, RecordingLog()) == 0
    assert json.loads((out / "summary.json").read_text())["unscanned"] == []
    (out / "shard-1" / "run.json").unlink()
    from job.errors import ConfigError

    with pytest.raises(ConfigError, match="shard 1 of 2 has not finished"):
        pipeline.run_merge(settings, RecordingLog())


def test_the_sharded_job_manifest_is_accepted_and_agrees_with_the_code(control_plane, namespace) -> None:
    import yaml

    from job.apply import lease_name
    from test_play import REPO

    path = REPO / "deploy" / "sharded-job.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    objects = control_plane.apply_yaml(path, namespace=namespace, dry_run=True)  # strict validation, nothing kept
    assert [o["kind"] for o in objects] == ["Role", "RoleBinding", "PersistentVolumeClaim", "CronJob"]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    job = cronjob["spec"]["jobTemplate"]["spec"]
    [container] = job["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    count = int(env["IMVJOB_SHARDS"]["value"])
    assert job["completionMode"] == "Indexed" and job["completions"] == job["parallelism"] == count
    assert env["IMVJOB_RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['batch.kubernetes.io/job-name']"
    role = next(d for d in docs if d["kind"] == "Role")
    names = next(r["resourceNames"] for r in role["rules"] if "resourceNames" in r)
    assert names == [lease_name(Settings(), (i, count)) for i in range(count)]
