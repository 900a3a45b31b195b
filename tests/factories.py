"""Small builders of model objects for tests: a snapshot, scan results, settings.

Each builder fills what a test does not care about with plausible values, so that a test only
says what matters to it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Iterable

from job.model import (Container, ContainerKind, Feature, ImageRef, Namespace, Pod, Problem, ScanResult, ScanState,
                       Snapshot, Vulnerability, VulnReport, Workload)
from job.settings import Settings

TAKEN_AT = "2026-05-04T06:00:00Z"


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def make_ref(repo: str = "team/app", *, host: str = "quay.io", tag: str = "") -> ImageRef:
    """An image manifest; `tag` only varies the digest (a rebuilt image has a new digest)."""
    return ImageRef(host, repo, digest(f"{host}/{repo}:{tag}"))


def make_vuln(name: str = "CVE-2024-0001", severity: str = "High", *, fixed_by: str = "",
              link: str | None = None, cvss: float | None = None, description: str = "") -> Vulnerability:
    if link is None:
        link = f"https://access.redhat.com/security/cve/{name}"
    return Vulnerability(name=name, severity=severity, namespace_name="rhel:9", description=description,
                         link=link, fixed_by=fixed_by, cvss_score=cvss)


def make_feature(name: str = "openssl", version: str = "3.0.1", *vulns: Vulnerability) -> Feature:
    return Feature(name=name, version=version, version_format="rpm", namespace_name="rhel:9",
                   vulnerabilities=tuple(vulns))


def make_result(ref: ImageRef, *features: Feature, state: ScanState = ScanState.SCANNED, detail: str = "",
                page_url: str | None = None) -> ScanResult:
    if page_url is None:
        page_url = f"https://{ref.host}/repository/{ref.repository}/manifest/{ref.digest}?tab=vulnerabilities"
    report = VulnReport("rhel:9", tuple(features)) if state is ScanState.SCANNED else None
    return ScanResult(ref=ref, state=state, report=report, detail=detail, backend="quay", page_url=page_url)


def make_pod(namespace: str, name: str, *refs: ImageRef | None, workload: tuple[str, str] | None = None,
             image_text: str = "") -> Pod:
    """A running pod; each ref is one container (None: a container whose image is unresolved)."""
    kind, wname = workload or ("Deployment", name.rsplit("-", 2)[0])
    containers = tuple(
        Container(name=f"c{i}", kind=ContainerKind.CONTAINER,
                  image=image_text or (f"{r.image}:latest" if r else "registry.local/unknown:latest"),
                  container_id=f"cri-o://{digest(namespace + name + str(i))[7:71]}", ref=r,
                  problem="" if r else "imageID has no digest")
        for i, r in enumerate(refs))
    return Pod(namespace=namespace, name=name, uid=digest(namespace + name)[7:43], workload=Workload(kind, wname),
               service_account="default", pull_secrets=(), containers=containers)


def make_snapshot(pods: Iterable[Pod], *, owners: dict[str, str] | None = None,
                  problems: Iterable[Problem] = (), taken_at: str = TAKEN_AT, cluster: str = "prod-eu",
                  scope: tuple[str, ...] | None = None, owner_key: str = "imvjob/notify") -> Snapshot:
    """owners: namespace → annotation value under owner_key."""
    pods = list(pods)
    names = sorted({p.namespace for p in pods} | set(owners or {}))
    namespaces = {n: Namespace(n, {}, {owner_key: owners[n]} if owners and n in owners else {}) for n in names}
    return Snapshot(taken_at=taken_at, cluster=cluster, pods=pods, namespaces=namespaces, problems=list(problems),
                    source="test", pages=1, scope=scope)


def make_settings(**changes) -> Settings:
    return Settings(**changes)


# --- hostile input: registry and cluster text that must stay inert in every output ---------------

SCRIPT = "<script>alert('x')</script>"
FORMULA = '=HYPERLINK("http://evil.example/x","click me")'
JS_LINK = "javascript:alert(document.cookie)"
DDE = "+cmd|' /C calc'!A0"
CRLF_CLUSTER = "prod\r\nBcc: evil@example.net"
HOSTILE_IMAGE = make_ref("evil/<img src=x onerror=alert(1)>")


def make_hostile_run() -> tuple[Snapshot, dict[ImageRef, ScanResult]]:
    """A run whose registry and cluster text tries HTML, formula, link and header injection."""
    vulns = (
        make_vuln(SCRIPT, "Critical", fixed_by=FORMULA, link=f"{JS_LINK} https://advisories.example/CVE-1",
                  description="<img src=x onerror=alert(1)> @SUM(1+1)*cmd|' /C calc'!A0"),
        make_vuln("=1+1", "High", fixed_by="-2+3", link="data:text/html,<script>alert(1)</script>"),
        make_vuln("@SUM(A1:A2)", "Medium", link="\tjavascript:alert(1)"),
    )
    result = make_result(HOSTILE_IMAGE, make_feature(DDE, "-1+1", *vulns), page_url=JS_LINK)
    pod = make_pod("shop", "web-1", HOSTILE_IMAGE, None, workload=("Deployment", "<b>web</b>\r\n=2+2"),
                   image_text="evil.example/x:1\r\nX-Injected: yes")
    snap = make_snapshot([pod], owners={"shop": "shop@example.com\r\nBcc: evil@example.net, team@example.com"},
                         cluster=CRLF_CLUSTER)
    return snap, {HOSTILE_IMAGE: result}


# --- one run at a fixed time over two manifests of a shop (the desired state and the plan) --------

RUN_AT = dt.datetime(2026, 11, 29, 10, 0, 48, 328470, tzinfo=dt.timezone.utc)
WEB_DIGEST = "sha256:" + "1" * 64
DB_DIGEST = "sha256:" + "2" * 64
WEB_REF = ImageRef("quay.io", "shop/web", WEB_DIGEST)
DB_REF = ImageRef("quay.io", "shop/db", DB_DIGEST)


def pod_of(ns: str, name: str, *refs: ImageRef, ids: tuple[str, ...] = ()) -> Pod:
    """A running pod of Deployment `web`, one container per ref, with these container IDs (else made up)."""
    containers = tuple(Container(f"c{i}", ContainerKind.CONTAINER, str(r),
                                 ids[i] if i < len(ids) else f"cri-o://{name}{i}", r) for i, r in enumerate(refs))
    return Pod(ns, name, "uid", Workload("Deployment", "web"), "default", (), containers)


def snap_of(*pods: Pod, scope=None) -> Snapshot:
    return Snapshot(taken_at="2026-11-29T10:00:00Z", cluster="test", pods=list(pods), namespaces={}, problems=[],
                    scope=scope)


def vuln_of(name: str, severity: str, fixed: str = "", **kw) -> Vulnerability:
    return Vulnerability(name=name, severity=severity, fixed_by=fixed, **kw)


def report_of(*features: Feature, ns: str = "debian:12") -> VulnReport:
    return VulnReport(namespace_name=ns, features=features)


def scanned(ref: ImageRef, rep: VulnReport) -> ScanResult:
    return ScanResult(ref, ScanState.SCANNED, rep, backend="test")
