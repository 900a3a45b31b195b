"""The scan cache through the whole play, on the real kube-apiserver with a simulated Quay host:
a run asks only about new and due manifests, writes nothing more for a cached answer, never
turns a failed rescan into a clean report, and forgets a manifest once it no longer runs."""
from __future__ import annotations

import json
import time

from registry_sim import QuayRole, sim_ca, sims  # noqa: F401
from test_play import Cluster, cluster, digest, quay_answer, writes  # noqa: F401

from job import scan_cache
from job.model import ImageRef

SECURITY = r"/api/v1/repository/.+/security"
WEB, DB, NEW = digest("cache-web"), digest("cache-db"), digest("cache-new")


def _asked(sim) -> list[str]:
    """The manifests the registry was asked about since the last call, sorted."""
    seen = sim.requests("GET", SECURITY)
    sim.seen.clear()
    return sorted(s.path.split("/manifest/")[1].split("/")[0] for s in seen)


def _answer(*finding: str) -> bytes:
    """Quay's scanned answer with one vulnerable package per (cve, severity, fixed-by)."""
    return json.dumps(quay_answer(finding)).encode()


def _web_running(cluster: Cluster, sims, finding: tuple[str, str, str] = ("CVE-2024-1", "High", "1.1")):  # noqa: F811
    """A simulated Quay host that has scanned WEB, and pod web-1 running it in the first namespace."""
    sim = sims()
    role = QuayRole(sim)
    role.reports[WEB] = _answer(*finding)
    cluster.run_pod(cluster.namespaces[0], "web-1", {"web": f"{sim.host}/shop/web@{WEB}"})
    return sim, role


def _online(c: Cluster, ca_file: str, **over):
    return c.play(**{"secscan_dir": "", "extra_certs": ca_file, "read_timeout": 2.0, "retries": 0,
                     "retry_budget": 5.0, **over})


def test_a_run_asks_only_about_new_and_due_manifests_and_writes_nothing_more(cluster: Cluster, sims,  # noqa: F811
                                                                             sim_ca):  # noqa: F811
    sim, role = _web_running(cluster, sims)
    a, b = cluster.namespaces
    role.reports[DB] = b'{"status": "queued", "data": null}'
    cluster.run_pod(b, "db-1", {"db": f"{sim.host}/shop/db@{DB}"})
    code, _ = _online(cluster, sim_ca[1])
    assert code == 0 and _asked(sim) == sorted([DB, WEB])
    first = cluster.imvs(a)

    # Unchanged: nothing is asked (the queued answer is younger than its recheck), nothing written.
    code, client = _online(cluster, sim_ca[1])
    assert code == 0 and _asked(sim) == [] and writes(client) == {}
    assert cluster.imvs(a) == first

    # A new pod with a new manifest: only that one is asked about.
    role.reports[NEW] = _answer("CVE-2024-2", "Critical", "2.0")
    cluster.run_pod(b, "new-1", {"new": f"{sim.host}/shop/new@{NEW}"})
    code, client = _online(cluster, sim_ca[1])
    assert code == 0 and _asked(sim) == [NEW]
    assert writes(client)["create"] == 1 and NEW.replace(":", ".") in cluster.imvs(b)

    # Every answer due again (--rescan-after of a second): all asked, the same objects, no write.
    time.sleep(1.1)
    code, client = _online(cluster, sim_ca[1], rescan_after=1 / 3600)
    assert code == 0 and _asked(sim) == sorted([DB, NEW, WEB]) and writes(client) == {}
    # --rescan-after 0: every manifest, every run.
    code, client = _online(cluster, sim_ca[1], rescan_after=0.0)
    assert code == 0 and _asked(sim) == sorted([DB, NEW, WEB]) and writes(client) == {}


def test_a_failed_rescan_keeps_the_object_and_is_asked_again(cluster: Cluster, sims, sim_ca):  # noqa: F811
    sim, role = _web_running(cluster, sims, ("CVE-2024-9", "Critical", "1.1"))
    a, _ = cluster.namespaces
    assert _online(cluster, sim_ca[1])[0] == 0 and _asked(sim) == [WEB]
    before = cluster.imvs(a)[WEB.replace(":", ".")]

    # Due, and the registry now answers garbage: an error (exit 2), the object as it was.
    time.sleep(1.1)
    role.reports[WEB] = b'{"status": "scanned", "data": {"Layer": {"Name": "x"}}}'
    code, client = _online(cluster, sim_ca[1], rescan_after=1 / 3600)
    assert code == 2 and _asked(sim) == [WEB] and writes(client) == {}
    assert cluster.imvs(a)[WEB.replace(":", ".")]["status"] == before["status"]
    # The old report was not kept in its place: the next run, however soon, asks again.
    code, _ = _online(cluster, sim_ca[1])
    assert code == 2 and _asked(sim) == [WEB]


def test_a_manifest_gone_from_the_cluster_leaves_the_cache(cluster: Cluster, sims, sim_ca):  # noqa: F811
    sim, role = _web_running(cluster, sims)
    a, _ = cluster.namespaces
    role.reports[DB] = _answer("CVE-2024-3", "Low", "")
    cluster.run_pod(a, "db-1", {"db": f"{sim.host}/shop/db@{DB}"})
    assert _online(cluster, sim_ca[1])[0] == 0 and _asked(sim) == sorted([DB, WEB])
    path = cluster.tmp / "out" / scan_cache.FILE
    key = scan_cache.fingerprint(cluster.settings(), cluster="test")
    cached, why = scan_cache.load(path, key=key, wanted=_refs(sim, WEB, DB))
    assert why == "" and len(cached) == 2

    cluster.delete_pod(a, "db-1")
    assert _online(cluster, sim_ca[1])[0] == 0 and _asked(sim) == []
    cached, _ = scan_cache.load(path, key=key, wanted=_refs(sim, WEB, DB))
    assert [r.digest for r in cached] == [WEB]
    # It comes back: asked about again, not answered from a report of before.
    cluster.run_pod(a, "db-2", {"db": f"{sim.host}/shop/db@{DB}"})
    assert _online(cluster, sim_ca[1])[0] == 0 and _asked(sim) == [DB]


def _refs(sim, *digests: str):
    return [ImageRef(sim.host, "shop/" + {WEB: "web", DB: "db"}[d], d) for d in digests]


def test_a_frequent_run_applies_but_leaves_the_reports_to_the_full_runs(cluster: Cluster, sims,  # noqa: F811
                                                                        sim_ca):  # noqa: F811
    sim, role = _web_running(cluster, sims)
    a, _ = cluster.namespaces
    assert _online(cluster, sim_ca[1])[0] == 0 and _asked(sim) == [WEB]
    out = cluster.tmp / "out"
    summary = (out / "summary.json").read_bytes()
    report = (out / "report.html").stat().st_mtime_ns

    role.reports[NEW] = _answer("CVE-2024-2", "Critical", "2.0")
    cluster.run_pod(a, "new-1", {"new": f"{sim.host}/shop/new@{NEW}"})
    code, client = _online(cluster, sim_ca[1], no_reports=True, smtp_host="127.0.0.1", smtp_port=1,
                           mail_to=("sec@example.com",))
    assert code == 0 and _asked(sim) == [NEW] and writes(client)["create"] == 1
    assert NEW.replace(":", ".") in cluster.imvs(a)
    # No report, no summary.json (the next full run compares with the last full one), no mail
    # (port 1 would fail the run); the stage files and the cache are there for that next run.
    assert (out / "summary.json").read_bytes() == summary
    assert (out / "report.html").stat().st_mtime_ns == report
    assert (out / "snapshot.json.gz").exists() and (out / scan_cache.FILE).exists()
    code, _ = _online(cluster, sim_ca[1])
    assert code == 0 and _asked(sim) == []
    assert json.loads((out / "summary.json").read_text()) != json.loads(summary)


def test_a_cache_of_another_shard_layout_never_answers_for_a_manifest_gone_since(cluster: Cluster, sims,  # noqa: F811
                                                                                 sim_ca):  # noqa: F811
    sim, role = _web_running(cluster, sims)
    a, _ = cluster.namespaces
    role.reports[DB] = _answer("CVE-2024-3", "Low", "")
    cluster.run_pod(a, "db-1", {"db": f"{sim.host}/shop/db@{DB}"})
    assert _online(cluster, sim_ca[1])[0] == 0 and _asked(sim) == sorted([DB, WEB])
    out = cluster.tmp / "out"
    assert (out / scan_cache.FILE).exists()

    # db-1 stops while the job runs in two shards: the unsharded cache, which still holds DB, goes.
    cluster.delete_pod(a, "db-1")
    assert [_online(cluster, sim_ca[1], shard=f"{i}/2")[0] for i in (0, 1)] == [0, 0] and _asked(sim) == [WEB]
    assert sorted(p.name for p in out.glob("scan-cache*")) == [f"scan-cache.shard-{i}-of-2.json.gz" for i in (0, 1)]

    # DB runs again and the job is unsharded again: asked about, not answered from before it left.
    cluster.run_pod(a, "db-2", {"db": f"{sim.host}/shop/db@{DB}"})
    assert _online(cluster, sim_ca[1])[0] == 0 and DB in _asked(sim)
    assert sorted(p.name for p in out.glob("scan-cache*")) == [scan_cache.FILE]
