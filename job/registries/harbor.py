"""Harbor, for registry hosts configured with --harbor-host: the artifact's vulnerability addition.

Pure: `report_from_harbor` (the additions document, keyed by a report mime type, → VulnReport,
one feature per package and version). I/O: `HarborBackend`, one GET per manifest, with the
pull credentials as Basic auth when Harbor asks for them.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from job.model import (Feature, ScanRequest, ScanResult, ScanState, Vulnerability, VulnReport, cvss_score,
                       normalize_severity)
from job.registries.auth import AuthFlow
from job.registries.backend import UnexpectedShape, report_result
from job.registries.failures import ScanFailure, excerpt
from job.registries.http import RetryBudget
from job.registries.refs import split_repository

#: Report types Harbor may key its answer with, preferred first.
REPORT_TYPES = ("application/vnd.security.vulnerability.report; version=1.1",
                "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0")
_CVE = re.compile(r"CVE-\d{4}-\d{4,7}")


def additions_path(repository: str, digest: str) -> str:
    """The artifact's vulnerabilities addition; a repository name with slashes is encoded twice."""
    project, name = split_repository(repository)
    return (f"/api/v2.0/projects/{quote(project, safe='')}/repositories/{quote(quote(name, safe=''), safe='')}"
            f"/artifacts/{digest}/additions/vulnerabilities")


def _report(doc: dict) -> Any:
    """The report of a type the job asked for; any other type's fields mean something else."""
    for key in REPORT_TYPES:
        if key in doc:
            return doc[key]
    keys = ", ".join(excerpt(str(k), 80) for k in list(doc)[:3])
    raise UnexpectedShape(f"no report of a type the job asked for (got {keys})")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _cvss(item: dict) -> tuple[float | None, str]:
    cvss = item.get("preferred_cvss")
    if not isinstance(cvss, dict):
        return None, ""
    return cvss_score(cvss.get("score_v3")), _str(cvss.get("vector_v3"))


def report_from_harbor(doc: Any) -> VulnReport | None:
    """A VulnReport from Harbor's additions document; None when Harbor holds no report (`{}`).
    Raises UnexpectedShape for a document of the wrong shape."""
    if not isinstance(doc, dict):
        raise UnexpectedShape("not a JSON object")
    if not doc:
        return None
    report = _report(doc)
    if not isinstance(report, dict):
        raise UnexpectedShape("the report is not an object")
    status = report.get("scan_status")
    if status is not None and status != "Success":
        # A scan overview (Harbor's artifact listing) of a scan that has not finished.
        raise UnexpectedShape(f"the scan is not finished (scan_status {excerpt(str(status), 40)})")
    # The list is what says "clean": an empty report, a null list or an overview is no report.
    items = report.get("vulnerabilities")
    if items is None:
        raise UnexpectedShape("the report has no vulnerabilities list")
    if not isinstance(items, list):
        raise UnexpectedShape("vulnerabilities is not a list")
    scanner = report.get("scanner") if isinstance(report.get("scanner"), dict) else {}
    updated_by = " ".join(p for p in (_str(scanner.get("name")), _str(scanner.get("version"))) if p)
    grouped: dict[tuple[str, str], list[Vulnerability]] = {}
    added_by: dict[tuple[str, str], str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise UnexpectedShape(f"vulnerabilities[{i}] is not an object")
        key = (_str(item.get("package")), _str(item.get("version")))
        score, vector = _cvss(item)
        links = item.get("links")
        link = " ".join(u for u in links if isinstance(u, str)) if isinstance(links, list) else _str(links)
        grouped.setdefault(key, []).append(Vulnerability(
            name=_str(item.get("id")),
            severity=normalize_severity(item.get("severity")),
            namespace_name=updated_by,
            description=_str(item.get("description")),
            link=link,
            fixed_by=_str(item.get("fix_version")),
            metadata={"UpdatedBy": updated_by, "RepoName": None, "RepoLink": None, "DistroName": "",
                      "DistroVersion": "", "NVD": {"CVSSv3": {"Vectors": vector, "Score": "" if score is None
                                                                  else score}}},
            cvss_score=score,
            cvss_vector=vector))
        layer = item.get("layer")
        if isinstance(layer, dict) and key not in added_by:
            added_by[key] = _str(layer.get("digest"))
    features = tuple(
        Feature(name=name, version=version, added_by=added_by.get((name, version), ""),
                base_scores=tuple(v.cvss_score for v in vulns if v.cvss_score is not None),
                cve_ids=tuple(sorted({c for v in vulns for c in _CVE.findall(f"{v.name} {v.link}")})),
                vulnerabilities=tuple(vulns))
        for (name, version), vulns in grouped.items())
    return VulnReport(namespace_name="", features=features)


class HarborBackend:
    """A Backend: the artifacts' vulnerability additions of one Harbor host."""

    name = "harbor"

    def __init__(self, *, auth: AuthFlow, scheme: str, host: str) -> None:
        self.auth = auth
        self.scheme = scheme
        self.host = host

    def scan(self, request: ScanRequest, *, budget: RetryBudget) -> ScanResult:
        ref = request.ref
        if "/" not in ref.repository:
            return ScanResult(ref, ScanState.NOT_FOUND, detail="Harbor repositories are project/name; this one "
                              "has no project", backend=self.name)
        url = f"{self.scheme}://{self.host}{additions_path(ref.repository, ref.digest)}"
        try:
            reply = self.auth.get(url, request=request, host=self.host, budget=budget, label="Harbor",
                                  headers={"Accept": "application/json",
                                           "X-Accept-Vulnerabilities": ", ".join(REPORT_TYPES)})
            return report_result(ref, reply, backend=self.name, label="Harbor", parse=report_from_harbor,
                                 absent="Harbor holds no vulnerability report for this artifact (not scanned "
                                 "there yet)")
        except ScanFailure as exc:
            return ScanResult(ref, exc.state, detail=exc.detail, backend=self.name)
