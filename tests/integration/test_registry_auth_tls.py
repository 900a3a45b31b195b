"""Credentials, TLS trust and proxies against simulated registries."""
from __future__ import annotations

import base64
import json

import certifi
from registry_sim import (Answer, ConnectProxy, QuayRole, RecordingLog, compat_bytes, digest,  # noqa: F401
                          registry_settings, sim_ca, sims)

from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests

SECURITY = r"/api/v1/repository/.+/security"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def pull_secret(auths: dict[str, tuple[str, str]]) -> dict:
    doc = {"auths": {host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for host, (u, p) in auths.items()}}
    return {"type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode()).decode()}}


class Secrets:
    def __init__(self, secrets: dict) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str]] = []

    def get_secret(self, namespace: str, name: str):
        self.reads.append((namespace, name))
        return self.secrets.get((namespace, name))


def test_credentials_are_sent_only_to_their_own_host_even_across_a_redirect(sims, registry_settings):
    noVulns = compat_bytes("quay", "noVulns.json")
    a, b = sims(), sims()
    cred_a, cred_b = basic("alice", "a-secret"), basic("bob", "b-secret")
    redirected = digest("redirected")
    # A's answer for one manifest, once authenticated, is a redirect to another host.
    a.route("GET", rf"/api/v1/repository/org/app/manifest/{redirected}/security",
            lambda r: Answer(302, b"", {"Location": f"{b.url}/public/report"})
            if r.headers.get("authorization") == cred_a else Answer.json({"error": "unauthorized"}, 401))
    b.route("GET", r"/public/report", lambda r: Answer(200, noVulns, {"Content-Type": "application/json"}))
    role_a, role_b = QuayRole(a), QuayRole(b)
    role_a.accepted_auth, role_b.accepted_auth = {cred_a}, {cred_b}
    secrets = Secrets({("ns", "for-a"): pull_secret({a.host: ("alice", "a-secret")}),
                       ("ns", "for-b"): pull_secret({b.host: ("bob", "b-secret")})})
    both = (("ns", "for-a"), ("ns", "for-b"))
    requests = [ScanRequest(ImageRef(a.host, "org/app", redirected), both)]
    for i in range(8):
        role_a.reports[digest("a", i)] = noVulns
        role_b.reports[digest("b", i)] = noVulns
        requests += [ScanRequest(ImageRef(a.host, "org/app", digest("a", i)), both),
                     ScanRequest(ImageRef(b.host, "org/app", digest("b", i)), both)]
    settings = registry_settings(registry_host_concurrency=2)
    results = scan_manifests(requests, settings, secrets=secrets, log=RecordingLog())

    assert {r.state for r in results.values()} == {ScanState.SCANNED}
    assert {s.authorization for s in a.seen} <= {None, cred_a}
    assert {s.authorization for s in b.seen} <= {None, cred_b}
    assert [s.authorization for s in b.requests("GET", "/public/report")] == [None]
    # Each secret read once for the run; the anonymous tries cost at most one per slot, not one per manifest.
    assert sorted(secrets.reads) == [("ns", "for-a"), ("ns", "for-b")]
    assert len(a.requests("GET", SECURITY)) <= 9 + 2
    assert len(b.requests("GET", SECURITY)) <= 8 + 2


def test_refused_and_missing_credentials_are_unauthorized(sims, registry_settings):
    host = sims()
    role = QuayRole(host)
    role.accepted_auth = {basic("right", "pw")}
    secrets = Secrets({("ns", "wrong"): pull_secret({host.host: ("wrong", "pw")})})
    with_wrong = ImageRef(host.host, "org/app", digest(1))
    without = ImageRef(host.host, "org/app", digest(2))
    results = scan_manifests([ScanRequest(with_wrong, (("ns", "wrong"), ("ns", "absent"))), ScanRequest(without)],
                             registry_settings(), secrets=secrets, log=RecordingLog())
    assert (results[with_wrong].state, results[with_wrong].detail) == (
        ScanState.UNAUTHORIZED, "registry refused the credentials (HTTP 401) of pull secret ns/wrong")
    assert (results[without].state, results[without].detail) == (
        ScanState.UNAUTHORIZED, f"registry requires credentials (HTTP 401) and no pull secret has an entry for "
                                f"{host.host}")
    assert all("pw" not in r.detail for r in results.values())


def test_a_pull_secret_that_is_no_valid_header_is_an_error_without_retries(sims, registry_settings):
    host = sims()
    role = QuayRole(host)
    role.accepted_auth = {"Bearer good"}
    doc = {"auths": {host.host: {"registrytoken": "line\nbreak-secret"}}}
    secrets = Secrets({("ns", "odd"): {"data": {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode())
                                                 .decode()}}})
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref, (("ns", "odd"),))], registry_settings(), secrets=secrets,
                             log=RecordingLog())
    assert (results[ref].state, results[ref].detail) == (
        ScanState.ERROR, "registry request could not be sent (invalid header value or URL)")
    assert len(host.requests("GET", SECURITY)) == 1  # the anonymous one


def test_global_pull_secret_comes_last_and_secrets_are_not_read_when_not_needed(sims, registry_settings):
    noVulns = compat_bytes("quay", "noVulns.json")
    private, public = sims(), sims()
    role_private, role_public = QuayRole(private), QuayRole(public)
    role_private.accepted_auth = {basic("global", "g")}
    role_private.reports[digest(1)] = role_public.reports[digest(2)] = noVulns
    secrets = Secrets({("ns", "other"): pull_secret({"quay.io": ("x", "y")}),
                       ("openshift-config", "pull-secret"): pull_secret({private.host: ("global", "g")})})
    on_private = ImageRef(private.host, "org/app", digest(1))
    on_public = ImageRef(public.host, "org/app", digest(2))
    settings = registry_settings(global_pull_secret="openshift-config/pull-secret")
    results = scan_manifests([ScanRequest(on_private, (("ns", "other"),))], settings, secrets=secrets,
                             log=RecordingLog())
    assert results[on_private].state is ScanState.SCANNED
    secrets.reads.clear()
    results = scan_manifests([ScanRequest(on_public, (("ns", "other"),))], settings, secrets=secrets,
                             log=RecordingLog())
    assert results[on_public].state is ScanState.SCANNED
    assert secrets.reads == []


def test_quay_token_goes_only_to_the_hosts_it_is_meant_for(sims, registry_settings, tmp_path):
    noVulns = compat_bytes("quay", "noVulns.json")
    a, b = sims(), sims()
    role_a, role_b = QuayRole(a), QuayRole(b)
    role_a.accepted_auth, role_b.accepted_auth = {"Bearer quay-token"}, {basic("bob", "b")}
    role_a.reports[digest(1)] = role_b.reports[digest(2)] = noVulns
    token_file = tmp_path / "token"
    token_file.write_text("quay-token\n")
    secrets = Secrets({("ns", "b"): pull_secret({b.host: ("bob", "b")})})
    requests = [ScanRequest(ImageRef(a.host, "org/app", digest(1)), (("ns", "b"),)),
                ScanRequest(ImageRef(b.host, "org/app", digest(2)), (("ns", "b"),))]
    settings = registry_settings(quay_token_file=str(token_file), quay_token_host=(a.host,))
    results = scan_manifests(requests, settings, secrets=secrets, log=RecordingLog())
    assert {r.state for r in results.values()} == {ScanState.SCANNED}
    assert "Bearer quay-token" in {s.authorization for s in a.seen}
    assert "Bearer quay-token" not in {s.authorization for s in b.seen}


def test_extra_certs_work_while_requests_ca_bundle_points_elsewhere(sims, registry_settings, monkeypatch, sim_ca):
    host = sims()
    QuayRole(host).reports[digest(1)] = compat_bytes("quay", "noVulns.json")
    ref = ImageRef(host.host, "org/app", digest(1))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    results = scan_manifests([ScanRequest(ref)], registry_settings(), secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.SCANNED
    # And the environment variable is not what decides: pointing it at the test CA does not
    # make the job trust that CA without --extra-certs.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim_ca[1])
    results = scan_manifests([ScanRequest(ref)], registry_settings(extra_certs="", retries=0), secrets=None,
                             log=RecordingLog())
    assert (results[ref].state, results[ref].detail) == (
        ScanState.UNREACHABLE, "registry unreachable: TLS error: certificate verify failed: unable to get local "
                               "issuer certificate")


def test_insecure_registry_is_unverified_for_that_host_only_and_reported(sims, registry_settings):
    listed, other = sims(), sims()
    for host in (listed, other):
        QuayRole(host).reports[digest(host.port)] = compat_bytes("quay", "noVulns.json")
    log = RecordingLog()
    requests = [ScanRequest(ImageRef(h.host, "org/app", digest(h.port))) for h in (listed, other)]
    results = scan_manifests(requests, registry_settings(extra_certs="", retries=0, insecure_registry=(listed.host,)),
                             secrets=None, log=log)
    assert results[requests[0].ref].state is ScanState.SCANNED
    assert results[requests[1].ref].state is ScanState.UNREACHABLE
    assert "TLS error" in results[requests[1].ref].detail
    assert log.messages("warning") == [f"  warning: registry {listed.host}: TLS certificate not verified "
                                       "(--insecure-registry)"]


def test_plain_http_registry_when_configured_so(sims, registry_settings):
    host = sims(tls=False)
    QuayRole(host).reports[digest(1)] = compat_bytes("quay", "noVulns.json")
    ref = ImageRef(host.host, "org/app", digest(1))
    results = scan_manifests([ScanRequest(ref)], registry_settings(insecure_registry=(f"http://{host.host}",)),
                             secrets=None, log=RecordingLog())
    assert results[ref].state is ScanState.SCANNED
    assert results[ref].page_url.startswith(f"http://{host.host}/repository/")


def test_https_proxy_from_the_environment_with_no_proxy(sims, registry_settings, monkeypatch):
    proxied, direct = sims(), sims(name="localhost")
    for host in (proxied, direct):
        QuayRole(host).reports[digest(host.port)] = compat_bytes("quay", "noVulns.json")
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")
        requests = [ScanRequest(ImageRef(h.host, "org/app", digest(h.port))) for h in (proxied, direct)]
        results = scan_manifests(requests, registry_settings(), secrets=None, log=RecordingLog())
    finally:
        proxy.stop()
    assert {r.state for r in results.values()} == {ScanState.SCANNED}
    assert proxy.tunnels and set(proxy.tunnels) == {proxied.host}
    assert direct.seen
