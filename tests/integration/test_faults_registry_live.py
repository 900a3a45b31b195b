"""Registry faults through the whole play, on the real kube-apiserver with a simulated registry:
the exit status a user sees, and that no ImageManifestVuln is lost or emptied."""
from __future__ import annotations

import json

import pytest
from registry_sim import QuayRole, compat_bytes, sim_ca, sims  # noqa: F401
from test_play import Cluster, cluster, digest, quay_answer, writes  # noqa: F401

from job.errors import ConfigError

pytestmark = pytest.mark.fault

SECURITY = r"/api/v1/repository/.+/security"
WEB = digest("registry-fault-web")


def _online(c: Cluster, sim, ca_file: str, **over):
    # rescan_after=0: every run asks the registry again (the fault is in its next answer, which
    # the scan cache would otherwise not ask for within its rescan interval).
    return c.play(**{"secscan_dir": "", "extra_certs": ca_file, "read_timeout": 2.0, "retries": 1,
                     "retry_budget": 5.0, "rescan_after": 0.0, **over})


@pytest.mark.parametrize("fault", ["no Features", "Features wrong type", "trickle past the request deadline",
                                   "past the scan deadline"])
def test_a_bad_answer_keeps_the_object_as_it_was_and_exits_2(cluster: Cluster, sims, sim_ca, fault):  # noqa: F811
    sim = sims()
    role = QuayRole(sim)
    a, _ = cluster.namespaces
    cluster.run_pod(a, "web-1", {"web": f"{sim.host}/shop/web@{WEB}"})
    role.reports[WEB] = json.dumps(quay_answer(("CVE-2024-9", "Critical", "1.1"))).encode()
    code, _ = _online(cluster, sim, sim_ca[1])
    assert code == 0
    before = cluster.imvs(a)[WEB.replace(":", ".")]
    assert before["status"]["criticalCount"] == 1

    over = {}
    if fault == "no Features":
        role.reports[WEB] = b'{"status": "scanned", "data": {"Layer": {"Name": "x"}}}'
    elif fault == "Features wrong type":
        role.reports[WEB] = b'{"status": "scanned", "data": {"Layer": {"Name": "x", "Features": {}}}}'
    elif fault == "trickle past the request deadline":
        sim.fault("GET", SECURITY, trickle=0.5, body=b" " * 600)
        over = {"request_deadline": 1.5}
    else:
        sim.fault("GET", SECURITY, hang=True)
        over = {"read_timeout": 30.0, "request_deadline": 30.0, "scan_deadline": 2.0}
    code, client = _online(cluster, sim, sim_ca[1], **over)
    assert code == 2
    after = cluster.imvs(a)[WEB.replace(":", ".")]
    assert after["spec"] == before["spec"] and after["status"] == before["status"]
    assert writes(client) == {}


def test_a_quay_token_without_hosts_stops_the_run_and_goes_nowhere(cluster: Cluster, sims, sim_ca,  # noqa: F811
                                                                    monkeypatch):
    sim = sims()
    role = QuayRole(sim)
    role.accepted_auth = {"Bearer tok-7f3a9e"}
    a, _ = cluster.namespaces
    cluster.run_pod(a, "web-1", {"web": f"{sim.host}/shop/web@{WEB}"})
    role.reports[WEB] = compat_bytes("quay", "mixedVulns.json")
    monkeypatch.setenv("IMVJOB_QUAY_TOKEN", "tok-7f3a9e")
    # A ConfigError: the CLI's one line and exit status 1.
    with pytest.raises(ConfigError, match="--quay-token-host") as raised:
        _online(cluster, sim, sim_ca[1])
    assert "tok-7f3a9e" not in str(raised.value)
    assert sim.seen == [] and cluster.imvs(a) == {}
    code, _ = _online(cluster, sim, sim_ca[1], quay_token_host=(sim.host,))
    assert code == 0
    assert "Bearer tok-7f3a9e" in {s.authorization for s in sim.requests("GET", SECURITY)}
    assert WEB.replace(":", ".") in cluster.imvs(a)
