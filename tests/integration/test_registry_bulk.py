"""Bulk Quay queries against simulated registries: request counts, concurrency bounds, retries,
Retry-After, the circuit breaker, and every result state."""
from __future__ import annotations

import json
import socket
import time
from collections import Counter

from registry_sim import (Gauge, QuayRole, RecordingLog, compat_bytes, digest, registry_settings,  # noqa: F401
                          sim_ca, sims)

from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests

SECURITY = r"/api/v1/repository/.+/security"
DISCOVERY = r"/\.well-known/app-capabilities"


def quay_host(sims, *, gauge=None, reports=None, **kwargs):
    host = sims(gauge=gauge, **kwargs)
    role = QuayRole(host)
    role.reports.update(reports or {})
    return host, role


def test_one_request_per_distinct_manifest_and_one_discovery_per_host(sims, registry_settings):
    scanned = compat_bytes("quay", "securityinformation.json")
    hosts = []
    requests = []
    for h in range(3):
        host, role = quay_host(sims)
        hosts.append(host)
        for i in range(15):
            d = digest(h, i)
            role.reports[d] = scanned
            ref = ImageRef(host.host, "org/app", d)
            # The same manifest run by several pods, handed over twice with different secrets.
            requests += [ScanRequest(ref, (("ns1", "a"),)), ScanRequest(ref, (("ns2", "b"),))]
    log = RecordingLog()
    results = scan_manifests(requests, registry_settings(), secrets=None, log=log)

    assert len(results) == 45
    for host in hosts:
        assert len(host.requests("GET", DISCOVERY)) == 1
        security = host.requests("GET", SECURITY)
        assert len(security) == 15
        assert len({s.path for s in security}) == 15
    result = next(iter(results.values()))
    assert result.state is ScanState.SCANNED and result.backend == "quay"
    assert len(result.report.features) == 188 and sum(len(f.vulnerabilities) for f in result.report.features) == 89
    assert result.page_url == (f"https://{result.ref.host}/repository/org/app/manifest/{result.ref.digest}"
                               "?tab=vulnerabilities")
    assert log.progress_calls[-1] == ("manifests scanned", 45, 45)
    summary = [m for m in log.messages("info") if m.strip().startswith("registry ")]
    assert len(summary) == 3 and all("15 manifests: scanned=15; 16 requests, 0 retries" in m for m in summary)


def test_per_host_bound_is_reached_and_never_exceeded_with_pooled_connections(sims, registry_settings):
    host, role = quay_host(sims)
    host.delay = 0.15
    noVulns = compat_bytes("quay", "noVulns.json")
    requests = []
    for i in range(24):
        role.reports[digest(i)] = noVulns
        requests.append(ScanRequest(ImageRef(host.host, "org/app", digest(i))))
    settings = registry_settings(registry_concurrency=32, registry_host_concurrency=4)
    started = time.monotonic()
    results = scan_manifests(requests, settings, secrets=None, log=RecordingLog())
    elapsed = time.monotonic() - started
    assert Counter(r.state for r in results.values()) == {ScanState.SCANNED: 24}
    assert host.max_in_flight == 4
    # Keep-alive: no more connections than requests in flight at once.
    assert host.connections <= 4
    print(f"\n24 manifests, 1 host, latency 0.15s, host bound 4: {elapsed:.2f}s "
          f"(ideal {0.15 + 24 / 4 * 0.15:.2f}s incl. discovery)")


def test_global_bound_across_hosts_is_reached_and_never_exceeded(sims, registry_settings):
    gauge = Gauge()
    noVulns = compat_bytes("quay", "noVulns.json")
    hosts, requests = [], []
    for h in range(3):
        host, role = quay_host(sims, gauge=gauge)
        host.delay = 0.1
        hosts.append(host)
        for i in range(20):
            role.reports[digest(h, i)] = noVulns
            requests.append(ScanRequest(ImageRef(host.host, "org/app", digest(h, i))))
    settings = registry_settings(registry_concurrency=6, registry_host_concurrency=4)
    started = time.monotonic()
    results = scan_manifests(requests, settings, secrets=None, log=RecordingLog())
    elapsed = time.monotonic() - started
    assert all(r.state is ScanState.SCANNED for r in results.values())
    assert gauge.max == 6
    assert all(h.max_in_flight <= 4 for h in hosts)
    print(f"\n60 manifests, 3 hosts, latency 0.1s, global bound 6: {elapsed:.2f}s "
          f"(ideal {0.1 + 60 / 6 * 0.1:.2f}s incl. discovery)")


def test_5xx_is_retried_until_it_succeeds(sims, registry_settings):
    host, role = quay_host(sims, reports={digest(1): compat_bytes("quay", "noVulns.json")})
    host.fault("GET", SECURITY, status=503, body=b"<html>busy</html>", times=2)
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(retries=2), secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.SCANNED
    assert len(host.requests("GET", SECURITY)) == 3


def test_retries_are_bounded_in_count(sims, registry_settings):
    host, role = quay_host(sims, reports={digest(1): b"{}"})
    host.fault("GET", SECURITY, status=500, body=b"internal error")
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(retries=2), secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.ERROR
    assert results[ref].detail == "registry answered HTTP 500 after 3 attempts: internal error"
    assert len(host.requests("GET", SECURITY)) == 3


def test_retry_after_is_honoured(sims, registry_settings):
    host, role = quay_host(sims, reports={digest(1): compat_bytes("quay", "noVulns.json")})
    host.fault("GET", SECURITY, status=429, headers={"Retry-After": "1"}, times=1)
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(), secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.SCANNED
    first, second = host.requests("GET", SECURITY)
    assert second.at - first.at >= 1.0


def test_retry_after_beyond_the_budget_gives_up_at_once(sims, registry_settings):
    host, role = quay_host(sims, reports={digest(1): b"{}"})
    host.fault("GET", SECURITY, status=429, headers={"Retry-After": "120"})
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(retry_budget=10), secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.UNREACHABLE
    assert results[ref].detail == "registry rate limit (HTTP 429), Retry-After 120"
    assert len(host.requests("GET", SECURITY)) == 1


def test_quay_520_is_a_failed_scan_and_not_retried(sims, registry_settings):
    host, role = quay_host(sims)
    host.fault("GET", SECURITY, status=520, body=b"scanner failed")
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(), secrets=None, log=RecordingLog())
    assert (results[ref].state, results[ref].detail) == (ScanState.FAILED, "the registry's scanner failed (HTTP 520)")
    assert len(host.requests("GET", SECURITY)) == 1


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_breaker_gives_up_a_hanging_host_after_a_few_requests(sims, registry_settings):
    dead, _ = quay_host(sims)
    dead.fault("*", ".*", hang=True)
    live, role = quay_host(sims, reports={digest("live"): compat_bytes("quay", "noVulns.json")})
    requests = [ScanRequest(ImageRef(dead.host, "org/app", digest(i))) for i in range(50)]
    requests.append(ScanRequest(ImageRef(live.host, "org/app", digest("live"))))
    settings = registry_settings(read_timeout=0.5, retries=4, breaker_threshold=3)
    results = scan_manifests(requests, settings, secrets=None, log=RecordingLog())
    dead_results = [r for r in results.values() if r.ref.host == dead.host]
    assert len(dead_results) == 50
    assert {r.state for r in dead_results} == {ScanState.UNREACHABLE}
    assert all(r.detail.startswith("registry unreachable: no answer within 0.5s (3 consecutive failures")
               for r in dead_results)
    assert len(dead.seen) == 3  # the discovery and its retries; no manifest was asked about
    assert results[ImageRef(live.host, "org/app", digest("live"))].state is ScanState.SCANNED


def test_breaker_stops_a_host_that_dies_after_discovery(sims, registry_settings):
    host, role = quay_host(sims)
    host.fault("GET", SECURITY, hang=True)
    requests = [ScanRequest(ImageRef(host.host, "org/app", digest(i))) for i in range(40)]
    settings = registry_settings(read_timeout=0.5, retries=4, breaker_threshold=3, registry_host_concurrency=4)
    results = scan_manifests(requests, settings, secrets=None, log=RecordingLog())
    assert {r.state for r in results.values()} == {ScanState.UNREACHABLE}
    # At most the requests in flight when the breaker opened, plus the ones that opened it.
    assert len(host.requests("GET", SECURITY)) <= 4 + 3


def test_a_refused_connection_is_unreachable(sims, registry_settings):
    ref = ImageRef(f"127.0.0.1:{_refused_port()}", "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(retries=1), secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.UNREACHABLE
    assert results[ref].detail == "registry unreachable: connection refused"


def test_every_state(sims, registry_settings):
    quay, role = quay_host(sims)
    docs = {
        "scanned": compat_bytes("quay", "mixedVulns.json"),
        "queued": compat_bytes("quay", "queued.json"),
        "failed": compat_bytes("quay", "failed.json"),
        "unsupported": compat_bytes("quay", "unsupported.json"),
        "too-large": json.dumps({"status": "manifest_layer_too_large", "data": None}).encode(),
        "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        "invalid-json": b'{"status": "scanned", "data": {',
        "wrong-shape": json.dumps({"status": "scanned", "data": {"Layer": {"Features": "many"}}}).encode(),
        "list": b"[1, 2, 3]",
    }
    for name, body in docs.items():
        role.reports[digest(name)] = body
    role.reports[digest("huge")] = b"{}"
    quay.fault("GET", rf"/api/v1/repository/org/app/manifest/{digest('huge')}/security", huge=3 * 1024 * 1024)
    quay.fault("GET", rf"/api/v1/repository/org/app/manifest/{digest('520')}/security", status=520)
    quay.fault("GET", rf"/api/v1/repository/org/app/manifest/{digest('not-gzip')}/security", status=200,
               body=b"plain text", headers={"Content-Encoding": "gzip"})
    quay.fault("GET", rf"/api/v1/repository/org/app/manifest/{digest('denied')}/security", status=401)
    no_api = sims()  # answers 404 to everything
    html_api = sims()
    html_api.fault("GET", r"/\.well-known/app-capabilities", status=200, body=b"<html>Welcome</html>",
                   headers={"Content-Type": "text/html"})
    gone = f"127.0.0.1:{_refused_port()}"
    refs = {name: ImageRef(quay.host, "org/app", digest(name)) for name in
            [*docs, "huge", "520", "denied", "missing", "not-gzip"]}
    refs["no-api"] = ImageRef(no_api.host, "org/app", digest("no-api"))
    refs["html-api"] = ImageRef(html_api.host, "org/app", digest("html-api"))
    refs["gone"] = ImageRef(gone, "org/app", digest("gone"))
    refs["bad-ref"] = ImageRef(quay.host, "../etc", digest("bad"))
    settings = registry_settings(max_response_mb=1, retries=0)
    results = scan_manifests([ScanRequest(r) for r in refs.values()], settings, secrets=None, log=RecordingLog())
    got = {name: (results[ref].state, results[ref].detail) for name, ref in refs.items()}

    assert got["scanned"] == (ScanState.SCANNED, "")
    assert results[refs["scanned"]].report is not None
    for name in ("queued", "failed", "unsupported", "too-large"):
        assert results[refs[name]].report is None
    assert got["queued"] == (ScanState.QUEUED, "queued for scanning at the registry")
    assert got["failed"] == (ScanState.FAILED, "the registry's scanner failed on this manifest")
    assert got["520"] == (ScanState.FAILED, "the registry's scanner failed (HTTP 520)")
    assert got["unsupported"] == (ScanState.UNSUPPORTED, "the registry's scanner does not support this manifest")
    assert got["too-large"] == (ScanState.UNSUPPORTED, "manifest layer too large")
    assert got["missing"] == (ScanState.NOT_FOUND, "the registry does not know this manifest (HTTP 404)")
    assert got["denied"] == (ScanState.UNAUTHORIZED, "registry requires credentials (HTTP 401) and no pull secret "
                                                     f"has an entry for {quay.host}")
    assert got["html"] == (ScanState.ERROR, "security response is not JSON (application/json, HTTP 200): "
                                            "502 Bad Gateway")
    assert got["invalid-json"][0] is ScanState.ERROR and "is not JSON" in got["invalid-json"][1]
    assert got["wrong-shape"] == (ScanState.ERROR, "malformed security document: Layer.Features is not a list")
    assert got["list"] == (ScanState.ERROR, "unexpected security document: [1, 2, 3]")
    assert got["huge"] == (ScanState.ERROR, "registry response larger than 1 MiB")
    assert got["not-gzip"] == (ScanState.ERROR, "registry answer could not be decoded (bad Content-Encoding)")
    assert got["no-api"] == (ScanState.NO_API, f"no security API at https://{no_api.host} "
                                               "(/.well-known/app-capabilities answered HTTP 404)")
    assert got["html-api"] == (ScanState.NO_API, f"no security API at https://{html_api.host} "
                                                 "(app-capabilities is not JSON: Welcome)")
    assert got["gone"] == (ScanState.UNREACHABLE, "registry unreachable: connection refused")
    assert got["bad-ref"] == (ScanState.ERROR, "invalid repository name '../etc'")
    assert {r.state for r in results.values()} == set(ScanState)
    assert len(no_api.requests()) == 1 and len(html_api.requests()) == 1
