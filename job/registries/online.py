"""A live scan: which backend serves each registry host, and every manifest asked about once.

A host matching --clair-host is Clair's, one matching --harbor-host is Harbor's; any other host
is asked once per run for Quay's discovery document. A host with no security API, or one that
cannot be reached for discovery, settles all its manifests with one reason.

The Quay API token (--quay-token-file / IMVJOB_QUAY_TOKEN) is one token for Quay hosts: it is
offered, before any pull secret, to the hosts that match --quay-token-host and to no other. A
token with no such host is a configuration error: any registry a pod names can advertise the
Quay API and ask for credentials, so an advertisement is no reason to send it.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import urllib3

from job.errors import ConfigError
from job.log import RunLog
from job.model import ImageRef, ScanRequest, ScanResult, ScanState, VulnReport
from job.registries.auth import AuthFlow
from job.registries.backend import Backend
from job.registries.bounds import limit_malloc_arenas
from job.registries.clair import ClairBackend, decode_psk
from job.registries.credentials import Credential, CredentialStore, SecretSource
from job.registries.distribution import RegistryV2
from job.registries.failures import ScanFailure, excerpt
from job.registries.harbor import HarborBackend
from job.registries.http import HttpClient, RetryBudget
from job.registries.once import Once
from job.registries.quay import QuayBackend, Reader, discover
from job.registries.refs import api_host, host_matches, ref_problem
from job.registries.schedule import run_in_lanes
from job.registries.tls import Trust
from job.settings import Settings, read_secret


@dataclass(frozen=True, slots=True)
class HostVerdict:
    """One answer for every manifest of a host (no API there, or not reachable for discovery)."""

    state: ScanState
    detail: str
    backend: str = ""


class Router:
    def __init__(self, settings: Settings, *, client: HttpClient, auth: AuthFlow, registry: RegistryV2,
                 trust: Trust, log: RunLog, reader: Reader | None = None, stage_end: float = math.inf) -> None:
        self.settings = settings
        self.stage_end = stage_end
        self.reader = reader
        self.client = client
        self.auth = auth
        self.trust = trust
        self.log = log
        self._discovered: Once[Backend | HostVerdict] = Once()
        token = read_secret("IMVJOB_QUAY_TOKEN", settings.quay_token_file)
        self.quay_token = Credential("Bearer " + token, "Quay API token") if token else None
        if token and not settings.quay_token_host:
            raise ConfigError("a Quay API token is set (IMVJOB_QUAY_TOKEN or --quay-token-file) but no "
                              "--quay-token-host names the hosts it may go to")
        self.clair: ClairBackend | None = None
        if settings.clair_host and not settings.clair_url:
            raise ConfigError("--clair-host needs --clair-url")
        if settings.clair_url:
            parts = urlsplit(settings.clair_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"--clair-url must be an http(s) URL, not {settings.clair_url!r}")
            psk = read_secret("IMVJOB_CLAIR_PSK", settings.clair_psk_file)
            self.clair = ClairBackend(client=client, base_url=settings.clair_url, key=decode_psk(psk) if psk else b"",
                                      issuer=settings.clair_issuer, registry=registry)
        self.clair_netloc = urlsplit(settings.clair_url).netloc.lower() if settings.clair_url else ""

    def lane(self, ref: ImageRef) -> str:
        """The host that will get most of this manifest's requests."""
        if self.clair is not None and host_matches(ref.host, self.settings.clair_host):
            return self.clair_netloc
        return api_host(ref.host)

    def backend_for(self, host: str) -> Backend | HostVerdict:
        """The backend that scans this host's manifests, or the one answer they all get."""
        if self.clair is not None and host_matches(host, self.settings.clair_host):
            return self.clair
        target = api_host(host)
        scheme = self.trust.scheme(target)
        if host_matches(host, self.settings.harbor_host):
            return HarborBackend(auth=self.auth, scheme=scheme, host=target)
        return self._discovered.get(target, lambda: self._discover(scheme, target))

    def budget(self) -> RetryBudget:
        return RetryBudget(self.settings.retry_budget, deadline=self.stage_end)

    def _discover(self, scheme: str, host: str) -> Backend | HostVerdict:
        budget = self.budget()
        try:
            template, why = discover(client=self.client, scheme=scheme, host=host, budget=budget)
        except ScanFailure as exc:
            return HostVerdict(exc.state, exc.detail)
        finally:
            self.client.release(budget)
        if not template:
            return HostVerdict(ScanState.NO_API, f"no security API at {scheme}://{host} ({why})")
        token = self.quay_token if host_matches(host, self.settings.quay_token_host) else None
        return QuayBackend(auth=self.auth, scheme=scheme, host=host, template=template, token=token,
                           reader=self.reader)


def _merge(requests: Sequence[ScanRequest]) -> list[ScanRequest]:
    """One request per manifest, even if the caller repeated one (pull secrets kept in order)."""
    merged: dict[ImageRef, dict[tuple[str, str], None]] = {}
    for request in requests:
        bucket = merged.setdefault(request.ref, {})
        for secret in request.pull_secrets:
            bucket.setdefault(secret, None)
    return [ScanRequest(ref, tuple(secrets)) for ref, secrets in merged.items()]


def _summary(results: dict[ImageRef, ScanResult], client: HttpClient, router: Router, log: RunLog,
             seconds: float) -> None:
    by_host: dict[str, list[ScanResult]] = defaultdict(list)
    for result in results.values():
        by_host[result.ref.host].append(result)
    stats = client.stats()
    for host in sorted(by_host):
        host_results = by_host[host]
        states = Counter(r.state.value for r in host_results)
        backends = sorted({r.backend for r in host_results if r.backend}) or ["none"]
        sent, retries = stats.get(api_host(host), (0, 0))
        line = (f"registry {host} ({', '.join(backends)}): {len(host_results)} manifests: "
                + ", ".join(f"{k}={v}" for k, v in sorted(states.items()))
                + f"; {sent} requests, {retries} retries")
        reasons = Counter(r.detail for r in host_results if r.state.is_job_error or r.state is ScanState.NO_API)
        if reasons:
            detail, count = reasons.most_common(1)[0]
            line += f"; {detail}" + (f" ({count}x)" if count > 1 else "")
        log.info(line)
    if router.clair is not None and router.clair_netloc in stats:
        sent, retries = stats[router.clair_netloc]
        log.info(f"Clair {router.clair_netloc}: {sent} requests, {retries} retries")
    log.info(f"{len(results)} manifests asked about in {seconds:.1f}s")


def _vulnerable_only(result: ScanResult) -> ScanResult:
    report = result.report
    if report is None or all(f.vulnerabilities for f in report.features):
        return result
    return dataclasses.replace(result, report=VulnReport(report.namespace_name, report.vulnerable_features))


def scan_online(requests: Sequence[ScanRequest], settings: Settings, *, secrets: SecretSource | None,
                log: RunLog, vulnerable_only: bool = False) -> dict[ImageRef, ScanResult]:
    requests = _merge(requests)
    limit_malloc_arenas()  # before the scan threads start: see bounds.py
    trust = Trust(extra_certs=settings.extra_certs, insecure_registry=settings.insecure_registry)
    for host in trust.unverified_hosts:
        log.warn(f"registry {host}: TLS certificate not verified (--insecure-registry)")
    if trust.unverified_hosts:
        # Said once above per host; urllib3 would say it again on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    client = HttpClient(settings, trust=trust, hosts_hint=len({r.ref.host for r in requests}) + 2)
    store = CredentialStore(secrets, global_pull_secret=settings.global_pull_secret, log=log)
    auth = AuthFlow(client, store)
    try:
        registry = RegistryV2(client=client, store=store, trust=trust)
        started = time.monotonic()
        # Past this, every manifest not answered yet is an error: no host may hold the apply.
        stage_end = started + settings.scan_deadline if settings.scan_deadline > 0 else math.inf
        router = Router(settings, client=client, auth=auth, registry=registry, trust=trust, log=log,
                        reader=Reader(vulnerable_only=vulnerable_only), stage_end=stage_end)
        results: dict[ImageRef, ScanResult] = {}

        def scan_one(request: ScanRequest) -> ScanResult:
            return _scan_one(request, router, log)

        def collect(request: ScanRequest, result: ScanResult) -> None:
            # Clair and Harbor reports list every package too: only the vulnerable ones are kept.
            results[request.ref] = _vulnerable_only(result) if vulnerable_only else result
            log.progress("manifests scanned", len(results), len(requests))

        run_in_lanes(requests, lane_of=lambda r: router.lane(r.ref), work=scan_one,
                     total_bound=settings.registry_concurrency, lane_bound=settings.registry_host_concurrency,
                     on_result=collect)
        _summary(results, client, router, log, time.monotonic() - started)
        return results
    finally:
        client.close()
        trust.close()


def _scan_one(request: ScanRequest, router: Router, log: RunLog) -> ScanResult:
    ref = request.ref
    problem = ref_problem(ref)
    if problem:
        return ScanResult(ref, ScanState.ERROR, detail=problem)
    budget = router.budget()
    try:
        if time.monotonic() >= budget.deadline:
            raise router.client.deadline_passed()
        target = router.backend_for(ref.host)
        if isinstance(target, HostVerdict):
            return ScanResult(ref, target.state, detail=target.detail, backend=target.backend)
        return target.scan(request, budget=budget)
    except ScanFailure as exc:
        return ScanResult(ref, exc.state, detail=exc.detail)
    except Exception as exc:  # noqa: BLE001 - one manifest's bug must not end the run
        message = f"internal error: {type(exc).__name__}: {excerpt(str(exc), 160)}"
        log.error(f"{ref}: {message}")
        return ScanResult(ref, ScanState.ERROR, detail=message)
    finally:
        router.client.release(budget)
