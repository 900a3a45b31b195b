"""Hostile and broken registries on real sockets: what a run must survive without losing a finding.

- An answer of the wrong shape is a job error for that manifest, never a clean scan.
- Every request has a total deadline, and the scan stage one of its own.
- The bytes held at once are bounded across all requests, not only per answer.
- A Quay token goes only to the hosts --quay-token-host names.
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from registry_peak_rss import measure
from registry_sim import (ClairRole, HarborRole, QuayRole, RecordingLog, compat_bytes, digest,  # noqa: F401
                          registry_settings, sim_ca, sims)

from job.errors import ConfigError
from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests

pytestmark = pytest.mark.fault

REPO = Path(__file__).resolve().parents[2]
SECURITY = r"/api/v1/repository/.+/security"
V11 = "application/vnd.security.vulnerability.report; version=1.1"


def _scan(refs, settings, **kwargs):
    results = scan_manifests([ScanRequest(r) for r in refs], settings, secrets=kwargs.pop("secrets", None),
                             log=kwargs.pop("log", RecordingLog()))
    return {r: results[r] for r in refs}


# --- 1. malformed "scanned" answers ----------------------------------------------------------


def test_malformed_quay_answers_are_job_errors_never_clean(sims, registry_settings):
    host = sims()
    role = QuayRole(host)
    docs = {
        "no Features": {"status": "scanned", "data": {"Layer": {"Name": "x"}}},
        "Features null": {"status": "scanned", "data": {"Layer": {"Name": "x", "Features": None}}},
        "Vulnerabilities object": {"status": "scanned", "data": {"Layer": {"Name": "x", "Features": [
            {"Name": "openssl", "Version": "1", "Vulnerabilities": {"CVE-2024-1": "Critical"}}]}}},
    }
    refs = {}
    for name, doc in docs.items():
        refs[name] = ImageRef(host.host, "org/app", digest(name))
        role.reports[refs[name].digest] = json.dumps(doc).encode()
    clean = ImageRef(host.host, "org/app", digest("clean"))
    role.reports[clean.digest] = compat_bytes("quay", "noPackages.json")
    results = _scan([*refs.values(), clean], registry_settings())
    for name, ref in refs.items():
        result = results[ref]
        assert result.state is ScanState.ERROR and result.state.is_job_error, name
        assert result.report is None and result.detail.startswith("malformed security document: "), name
    assert results[refs["no Features"]].detail == "malformed security document: Layer has no Features list"
    # A real answer for an image without packages is still a clean scan.
    assert (results[clean].state, results[clean].report.features) == (ScanState.SCANNED, ())


def test_malformed_harbor_answers_are_job_errors_never_clean(sims, registry_settings):
    host = sims()
    harbor = HarborRole(host)
    docs = {
        "empty report": {V11: {}},
        "vulnerabilities null": {V11: {"generated_at": "2024-01-01T00:00:00Z", "vulnerabilities": None}},
        "unknown type": {"application/vnd.example.vuln.report; version=9": {"vulnerabilities": []}},
        "still running": {V11: {"scan_status": "Running", "complete_percent": 10}},
        "wrong type": {V11: {"vulnerabilities": {"CVE-1": {}}}},
    }
    refs = {}
    for name, doc in docs.items():
        refs[name] = ImageRef(host.host, "proj/app", digest(name))
        harbor.reports[("proj", "app", refs[name].digest)] = json.dumps(doc).encode()
    results = _scan(list(refs.values()), registry_settings(harbor_host=(host.host,)))
    got = {name: (results[ref].state, results[ref].detail, results[ref].report) for name, ref in refs.items()}
    assert got == {
        "empty report": (ScanState.ERROR, "malformed Harbor report: the report has no vulnerabilities list", None),
        "vulnerabilities null": (ScanState.ERROR, "malformed Harbor report: the report has no vulnerabilities list",
                                 None),
        "unknown type": (ScanState.ERROR, "malformed Harbor report: no report of a type the job asked for (got "
                                          "application/vnd.example.vuln.report; version=9)", None),
        "still running": (ScanState.ERROR, "malformed Harbor report: the scan is not finished (scan_status Running)",
                          None),
        "wrong type": (ScanState.ERROR, "malformed Harbor report: vulnerabilities is not a list", None),
    }


def test_malformed_clair_answers_are_job_errors_never_clean(sims, registry_settings, tmp_path):
    host = sims()
    psk = b"0123456789abcdef0123456789abcdef"
    clair = ClairRole(host, psk=psk)
    psk_file = tmp_path / "psk"
    psk_file.write_text(base64.b64encode(psk).decode())
    base = {"manifest_hash": "", "packages": {"1": {"name": "openssl", "version": "1"}}, "distributions": {},
            "environments": {}, "vulnerabilities": {"v": {"name": "CVE-1", "normalized_severity": "Critical"}},
            "package_vulnerabilities": {"1": ["v"]}}
    docs = {"no vulnerabilities": {k: v for k, v in base.items() if k != "vulnerabilities"},
            "no package_vulnerabilities": {k: v for k, v in base.items() if k != "package_vulnerabilities"},
            "ids null": {**base, "package_vulnerabilities": {"1": None}},
            "vulnerabilities null": {**base, "vulnerabilities": None}}
    refs = {}
    for name, doc in docs.items():
        refs[name] = ImageRef("registry.corp.example", "team/app", digest(name))
        clair.reports[refs[name].digest] = json.dumps(doc).encode()
    settings = registry_settings(clair_url=host.url, clair_host=("registry.corp.example",),
                                 clair_psk_file=str(psk_file))
    results = _scan(list(refs.values()), settings)
    got = {name: (results[ref].state, results[ref].detail) for name, ref in refs.items()}
    assert got == {
        "no vulnerabilities": (ScanState.ERROR, "malformed Clair report: vulnerabilities is not an object"),
        "no package_vulnerabilities": (ScanState.ERROR,
                                       "malformed Clair report: package_vulnerabilities is not an object"),
        "ids null": (ScanState.ERROR, "malformed Clair report: package_vulnerabilities[1] is not a list"),
        "vulnerabilities null": (ScanState.ERROR, "malformed Clair report: vulnerabilities is not an object"),
    }


# --- 5. deadlines ------------------------------------------------------------------------------


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_trickling_registry_is_cut_at_the_request_deadline(sims, registry_settings, in_headers):
    host = sims()
    QuayRole(host)
    # One byte every 0.2 s: never a read timeout, and 40 s to send it all.
    host.fault("GET", SECURITY, trickle=0.2, trickle_headers=in_headers, body=b" " * 200)
    ref = ImageRef(host.host, "org/app", digest(1))
    settings = registry_settings(read_timeout=2.0, retries=4, retry_budget=4.0, request_deadline=1.5)
    started = time.monotonic()
    result = _scan([ref], settings)[ref]
    elapsed = time.monotonic() - started
    assert (result.state, result.detail) == (
        ScanState.UNREACHABLE, "registry unreachable: no complete answer within 1.5s (--request-deadline)")
    assert result.state.is_job_error
    assert elapsed < 6.0, elapsed
    assert 1 <= len(host.requests("GET", SECURITY)) <= 3


def test_the_scan_stage_deadline_ends_every_manifest_not_yet_answered(sims, registry_settings):
    slow = sims()
    role = QuayRole(slow)
    slow.delay = 0.4
    refs = [ImageRef(slow.host, "org/app", digest(i)) for i in range(20)]
    for ref in refs:
        role.reports[ref.digest] = compat_bytes("quay", "noVulns.json")
    hanging = sims()
    QuayRole(hanging)
    hanging.fault("GET", SECURITY, hang=True)
    held = ImageRef(hanging.host, "org/app", digest("held"))
    settings = registry_settings(registry_host_concurrency=2, read_timeout=30.0, request_deadline=30.0,
                                 scan_deadline=2.5)
    started = time.monotonic()
    results = _scan([*refs, held], settings)
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, elapsed
    states = [results[r].state for r in refs]
    assert 2 <= states.count(ScanState.SCANNED) < 20
    late = [results[r] for r in [*refs, held] if results[r].state is not ScanState.SCANNED]
    assert results[held] in late
    for result in late:
        assert (result.state, result.detail) == (
            ScanState.ERROR, "the scan stage's deadline (2.5s, --scan-deadline) passed before this manifest was "
                             "answered")


# --- 6. bytes held across all requests ------------------------------------------------------


def test_bytes_held_across_requests_in_flight_are_bounded():
    # The scan runs in a child process whose peak RSS is what a memory limit would see: 16
    # answers of 8 MiB of valid JSON read at once add about 120 MiB; within the budget, about 40.
    # What the interpreter and the job's libraries take is measured apart (same scan, tiny answers),
    # so that the bound is on what the answers add, whatever the libraries weigh.
    changes = {"registry_host_concurrency": 16, "registry_memory_mb": 48, "max_response_mb": 16}
    base = measure(manifests=16, mib=0, shape="string", repo=REPO, changes=changes)
    got = measure(manifests=16, mib=8, shape="string", repo=REPO, changes=changes)
    assert got["states"] == base["states"] == {"scanned": 16}
    added = got["peak_rss_mib"] - base["peak_rss_mib"]
    assert added < 80, (base, got)  # with no budget to speak of (1 GiB): about 120 MiB more
    print(f"\npeak RSS for 16 x 8 MiB answers with a 48 MiB budget: {got['peak_rss_mib']:.0f} MiB, "
          f"{added:.0f} MiB over the same scan of tiny answers")


def test_an_answer_that_cannot_fit_the_budget_once_decoded_is_an_error(sims, registry_settings):
    host = sims()
    role = QuayRole(host)
    # 1.5 MiB of empty lists is tens of MiB once decoded.
    features = b",".join([b"[]"] * (512 * 1024))
    role.reports[digest(1)] = (b'{"status": "scanned", "data": {"Layer": {"Name": "x", "Features": [], "Pad": ['
                               + features + b"]}}}")
    ref = ImageRef(host.host, "org/app", digest(1))
    result = _scan([ref], registry_settings(max_response_mb=2, registry_memory_mb=8))[ref]
    assert result.state is ScanState.ERROR
    assert result.detail == "registry answer would take more than 8 MiB once decoded (--registry-memory-mb)"


# --- 13. credentials follow hosts ---------------------------------------------------------------


def test_a_quay_token_without_token_hosts_is_a_configuration_error_and_goes_nowhere(sims, registry_settings,
                                                                                   monkeypatch):
    host = sims()
    role = QuayRole(host)
    role.accepted_auth = {"Bearer tok-7f3a9e"}
    monkeypatch.setenv("IMVJOB_QUAY_TOKEN", "tok-7f3a9e")
    with pytest.raises(ConfigError) as raised:
        _scan([ImageRef(host.host, "org/app", digest(1))], registry_settings())
    assert str(raised.value) == ("a Quay API token is set (IMVJOB_QUAY_TOKEN or --quay-token-file) but no "
                                 "--quay-token-host names the hosts it may go to")
    assert "tok-7f3a9e" not in str(raised.value)
    assert host.seen == []


def test_a_host_that_advertises_quay_and_asks_for_credentials_gets_no_token_unless_named(sims, registry_settings,
                                                                                         monkeypatch):
    named, stranger = sims(), sims()
    for host in (named, stranger):
        role = QuayRole(host)
        role.accepted_auth = {"Bearer tok-7f3a9e"}
        role.reports[digest(host.port)] = compat_bytes("quay", "noVulns.json")
    monkeypatch.setenv("IMVJOB_QUAY_TOKEN", "tok-7f3a9e")
    refs = [ImageRef(h.host, "org/app", digest(h.port)) for h in (named, stranger)]
    results = _scan(refs, registry_settings(quay_token_host=(named.host,)))
    assert results[refs[0]].state is ScanState.SCANNED
    assert (results[refs[1]].state, results[refs[1]].detail) == (
        ScanState.UNAUTHORIZED, f"registry requires credentials (HTTP 401) and no pull secret has an entry for "
                                f"{stranger.host}")
    assert all(s.authorization is None for s in stranger.seen)
