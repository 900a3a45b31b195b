"""Clair v4, for registry hosts configured with --clair-host: any OCI registry gets scanned.

Pure: `report_from_clair` turns a matcher vulnerability report into the same VulnReport as
Quay's API gives (Quay builds its own answer from Clair's report the same way: one feature per
package, vulnerabilities de-duplicated per package/version/name, severity from
normalized_severity or else from the CVSS enrichment, CSO-style Metadata).
I/O: `ClairBackend` asks the matcher; a manifest Clair has not seen (404) is indexed first,
with its layers fetched by Clair from the registry with the pull credentials.
"""
from __future__ import annotations

import base64
import binascii
import re
import time
import warnings
from typing import Any
from urllib.parse import parse_qs

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from job.errors import ConfigError
from job.model import (Feature, ScanRequest, ScanResult, ScanState, Vulnerability, VulnReport, cvss_score,
                       normalize_severity, severity_from_cvss)
from job.registries.backend import UnexpectedShape, report_result
from job.registries.distribution import RegistryV2
from job.registries.failures import BadResponse, ScanFailure, Unauthorized, excerpt
from job.registries.http import HttpClient, Reply, RetryBudget
from job.registries.status import state_for_status

REPORT_PATH = "/matcher/api/v1/vulnerability_report/"
INDEX_PATH = "/indexer/api/v1/index_report"
CVSS_ENRICHER = "clair.cvss"
JWT_LIFETIME = 300
#: Clair fetches and unpacks every layer before it answers an index request, and stops if the
#: client goes away: that answer gets this long at least (Quay waits as long).
INDEX_READ_TIMEOUT = 600.0
_CVE = re.compile(r"CVE-\d{4}-\d{4,7}")

# The key is whatever Clair is configured with; a warning per run about its length helps no one.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)


# --- pure: the report ---------------------------------------------------------------------


def decode_psk(psk: str) -> bytes:
    try:
        key = base64.b64decode(psk.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("the Clair pre-shared key is not base64") from exc
    if not key:
        raise ConfigError("the Clair pre-shared key is empty")
    return key


def make_jwt(key: bytes, *, issuer: str, now: float | None = None) -> str:
    """The bearer token Clair's PSK authentication accepts: HS256, allow-listed `iss`, short `exp`."""
    now = time.time() if now is None else now
    return jwt.encode({"iss": issuer, "iat": int(now), "nbf": int(now) - 30, "exp": int(now) + JWT_LIFETIME},
                      key, algorithm="HS256")


def _map(doc: dict, key: str) -> dict:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UnexpectedShape(f"{key} is not an object")
    return value


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _fixed_in(value: Any) -> str:
    """fixed_in_version may be a plain version or a URL-encoded `fixed=…&…` form; "0" means none."""
    text = _str(value)
    if "=" in text:
        fixed = parse_qs(text).get("fixed")
        text = fixed[0] if fixed else ""
    return "" if text == "0" else text


def cvss_enrichments(report: dict) -> dict[str, tuple[float, str]]:
    """{vulnerability id: (highest CVSS v3 base score, its vector)} from the CVSS enricher."""
    out: dict[str, tuple[float, str]] = {}
    for kind, documents in _map(report, "enrichments").items():
        if CVSS_ENRICHER not in str(kind) or not isinstance(documents, list):
            continue
        for document in documents:
            if not isinstance(document, dict):
                continue
            for vuln_id, entries in document.items():
                for entry in entries if isinstance(entries, list) else []:
                    score = cvss_score(entry.get("baseScore")) if isinstance(entry, dict) else None
                    if score is not None and (vuln_id not in out or score > out[vuln_id][0]):
                        out[vuln_id] = (score, _str(entry.get("vectorString")))
    return out


def _distribution_name(dist: Any) -> str:
    """'alpine:3.7', 'rhel:8': the namespace style of Quay and Clair v2."""
    if not isinstance(dist, dict):
        return ""
    did, version = _str(dist.get("did")), _str(dist.get("version_id"))
    return f"{did}:{version}" if did and version else did or _str(dist.get("name"))


def _vulnerability(vuln: dict, score: tuple[float, str] | None) -> Vulnerability:
    severity = normalize_severity(vuln.get("normalized_severity"))
    if severity == "Unknown" and score is not None:
        severity = severity_from_cvss(score[0])
    repository = vuln.get("repository") if isinstance(vuln.get("repository"), dict) else {}
    distribution = vuln.get("distribution") if isinstance(vuln.get("distribution"), dict) else {}
    metadata = {
        "UpdatedBy": _str(vuln.get("updater")),
        "RepoName": repository.get("name"),
        "RepoLink": repository.get("uri"),
        "DistroName": distribution.get("name"),
        "DistroVersion": distribution.get("version"),
        "NVD": {"CVSSv3": {"Vectors": score[1] if score else "", "Score": score[0] if score else ""}},
    }
    return Vulnerability(
        name=_str(vuln.get("name")),
        severity=severity,
        namespace_name=_str(vuln.get("updater")),
        description=_str(vuln.get("description")),
        link=_str(vuln.get("links")),
        fixed_by=_fixed_in(vuln.get("fixed_in_version")),
        metadata=metadata,
        cvss_score=score[0] if score else None,
        cvss_vector=score[1] if score else "",
    )


def report_from_clair(report: Any) -> VulnReport:
    """A VulnReport from a Clair v4 vulnerability report. Raises UnexpectedShape for a wrong document."""
    if not isinstance(report, dict):
        raise UnexpectedShape("not a JSON object")
    # The three maps that decide "clean" are required by Clair's API: missing or null is no report.
    for key in ("packages", "vulnerabilities", "package_vulnerabilities"):
        if not isinstance(report.get(key), dict):
            raise UnexpectedShape(f"{key} is not an object")
    packages = _map(report, "packages")
    environments = _map(report, "environments")
    distributions = _map(report, "distributions")
    vulnerabilities = _map(report, "vulnerabilities")
    package_vulns = _map(report, "package_vulnerabilities")
    scores = cvss_enrichments(report)
    seen: set[tuple[str, str, str]] = set()
    features = []
    for pkg_id, pkg in packages.items():
        if not isinstance(pkg, dict):
            raise UnexpectedShape(f"packages[{pkg_id}] is not an object")
        name, version = _str(pkg.get("name")), _str(pkg.get("version"))
        envs = environments.get(pkg_id)
        env = envs[0] if isinstance(envs, list) and envs and isinstance(envs[0], dict) else {}
        vulns = []
        ids = package_vulns.get(pkg_id, [])
        if not isinstance(ids, list):
            raise UnexpectedShape(f"package_vulnerabilities[{pkg_id}] is not a list")
        for vuln_id in ids:
            vuln = vulnerabilities.get(vuln_id)
            if not isinstance(vuln, dict):
                raise UnexpectedShape(f"package_vulnerabilities[{pkg_id}] names an unknown vulnerability")
            # The same advisory reported through several repositories is one vulnerability.
            key = (name, version, _str(vuln.get("name")))
            if key in seen:
                continue
            seen.add(key)
            vulns.append(_vulnerability(vuln, scores.get(str(vuln_id))))
        cves = sorted({c for v in vulns for c in _CVE.findall(v.link)})
        features.append(Feature(
            name=name, version=version,
            namespace_name=_distribution_name(distributions.get(_str(env.get("distribution_id")))),
            added_by=_str(env.get("introduced_in")),
            base_scores=tuple(v.cvss_score for v in vulns if v.cvss_score is not None),
            cve_ids=tuple(cves),
            vulnerabilities=tuple(vulns)))
    names = {_distribution_name(d) for d in distributions.values()} - {""}
    return VulnReport(namespace_name=names.pop() if len(names) == 1 else "", features=tuple(features))


def index_body(digest: str, layers: Any, authorization: str | None) -> dict:
    """The index_report request: the manifest's layers, each with the header that opens it."""
    out = []
    for layer in layers:
        headers: dict[str, list[str]] = {}
        # A foreign layer's own URL is another host: it never gets the registry's credentials.
        if authorization and layer.on_registry:
            headers["Authorization"] = [authorization]
        out.append({"hash": layer.digest, "uri": layer.uri, "headers": headers})
    return {"hash": digest, "layers": out}


# --- I/O ------------------------------------------------------------------------------------


class ClairBackend:
    """A Backend: one Clair v4 (matcher and indexer) for the hosts of --clair-host."""

    name = "clair"

    def __init__(self, *, client: HttpClient, base_url: str, key: bytes, issuer: str, registry: RegistryV2) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.issuer = issuer
        self.registry = registry

    def _headers(self) -> dict[str, str]:
        if not self.key:  # a Clair without PSK authentication
            return {"Accept": "application/json"}
        return {"Authorization": "Bearer " + make_jwt(self.key, issuer=self.issuer), "Accept": "application/json"}

    def _report(self, digest: str, budget: RetryBudget) -> Reply:
        reply = self.client.request("GET", self.base_url + REPORT_PATH + digest, budget=budget, label="Clair",
                                    headers=self._headers())
        if reply.status in (401, 403):
            raise Unauthorized(f"Clair refused the job's token (HTTP {reply.status}); check the PSK and issuer")
        return reply

    def scan(self, request: ScanRequest, *, budget: RetryBudget) -> ScanResult:
        ref = request.ref
        try:
            reply = self._report(ref.digest, budget)
            if reply.status == 404:
                outcome = self._index(request, budget)
                if outcome is not None:
                    return outcome
                reply = self._report(ref.digest, budget)
                if reply.status == 404:
                    return ScanResult(ref, ScanState.QUEUED, detail="Clair has not finished indexing the manifest",
                                      backend=self.name)
            return report_result(ref, reply, backend=self.name, label="Clair", parse=report_from_clair)
        except ScanFailure as exc:
            return ScanResult(ref, exc.state, detail=exc.detail, backend=self.name)

    def _index(self, request: ScanRequest, budget: RetryBudget) -> ScanResult | None:
        """Have Clair index the manifest; a result when that ends the manifest's scan, else None."""
        ref = request.ref
        manifest = self.registry.pull_manifest(request, budget=budget)
        body = index_body(ref.digest, manifest.layers, manifest.authorization)
        reply = self.client.request("POST", self.base_url + INDEX_PATH, budget=budget, label="Clair",
                                    headers=self._headers(), json_body=body,
                                    read_timeout=max(INDEX_READ_TIMEOUT, self.client.settings.read_timeout))
        if reply.status in (401, 403):
            raise Unauthorized(f"Clair refused the job's token (HTTP {reply.status}); check the PSK and issuer")
        if reply.status == 400:
            raise BadResponse(f"Clair rejected the manifest (HTTP 400): {excerpt(reply.body)}")
        if reply.status not in (200, 201):
            state, detail = state_for_status(reply, "Clair")
            raise ScanFailure(f"indexing: {detail}", state=state)
        doc = reply.json("Clair index report")
        state = doc.get("state") if isinstance(doc, dict) else None
        if not isinstance(state, str) or not isinstance(doc.get("success"), bool):
            raise BadResponse(f"Clair index report has no state or success flag: {excerpt(reply.body)}")
        if state == "IndexError" or (state == "IndexFinished" and doc.get("success") is False):
            return ScanResult(ref, ScanState.FAILED, detail=f"Clair could not index the manifest: "
                              f"{excerpt(_str(doc.get('err')) or state)}", backend=self.name)
        if state != "IndexFinished":
            return ScanResult(ref, ScanState.QUEUED, detail=f"Clair is indexing the manifest ({excerpt(state, 40)})",
                              backend=self.name)
        return None
