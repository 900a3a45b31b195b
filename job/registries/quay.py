"""Quay, and any registry that advertises `io.quay.manifest-security`.

Pure: `parse_capabilities` (discovery document → API template or the reason there is none)
and `parse_security_response` (security API document → state, report, detail; the offline
secscan-dir path uses it too). I/O: `QuayBackend`, one GET per manifest.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import orjson

from job.memory import gc_paused
from job.model import (Feature, ImageRef, ScanRequest, ScanResult, ScanState, Vulnerability, VulnReport,
                       cvss_score, normalize_severity)
from job.registries.auth import AuthFlow
from job.registries.backend import UnexpectedShape
from job.registries.credentials import Credential
from job.registries.failures import ScanFailure, excerpt
from job.registries.http import HttpClient, RetryBudget
from job.registries.quay_fast import read_scanned
from job.registries.refs import split_repository
from job.registries.status import state_for_status

CAPABILITY = "io.quay.manifest-security"
DISCOVERY_PATH = "/.well-known/app-capabilities"
#: Quay's status when the scanner behind it failed: a definite answer, not retried.
SCANNER_FAILED = 520

_STATUS_STATES = {
    "queued": (ScanState.QUEUED, "queued for scanning at the registry"),
    "failed": (ScanState.FAILED, "the registry's scanner failed on this manifest"),
    "unsupported": (ScanState.UNSUPPORTED, "the registry's scanner does not support this manifest"),
    "manifest_layer_too_large": (ScanState.UNSUPPORTED, "manifest layer too large"),
}


# --- discovery ---------------------------------------------------------------------------


def parse_capabilities(doc: Any) -> tuple[str, str]:
    """(path template, '') when the document offers the manifest security API, else ('', why)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("capabilities"), dict):
        return "", "app-capabilities is not a capabilities document"
    capability = doc["capabilities"].get(CAPABILITY)
    template = capability.get("rest-api-template") if isinstance(capability, dict) else None
    if not isinstance(template, str) or not template.strip():
        return "", f"app-capabilities does not offer {CAPABILITY}"
    if not all(f"{{{name}}}" in template for name in ("namespace", "reponame", "digest")):
        return "", f"{CAPABILITY} template lacks {{namespace}}, {{reponame}} or {{digest}}"
    # Only the path is used: the API is asked on the host the image came from, so that
    # credentials go nowhere else, whatever host name the document was generated with.
    parts = urlsplit(template.strip())
    return parts.path or "/", ""


def security_path(template: str, ref: ImageRef) -> str:
    namespace, reponame = split_repository(ref.repository)
    return (template.replace("{namespace}", quote(namespace, safe=""))
            .replace("{reponame}", quote(reponame, safe="/"))
            .replace("{digest}", quote(ref.digest, safe=":"))) + "?vulnerabilities=true"


def page_url(scheme: str, host: str, ref: ImageRef) -> str:
    """The image's vulnerability page in Quay's web console."""
    return f"{scheme}://{host}/repository/{ref.repository}/manifest/{ref.digest}?tab=vulnerabilities"


# --- the security document ---------------------------------------------------------------


def _text(doc: dict, key: str, where: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnexpectedShape(f"{where}.{key} is not a string")
    return value


def _list(doc: dict, key: str, where: str) -> list:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise UnexpectedShape(f"{where}.{key} is not a list")
    return value


def _cvss(metadata: Any) -> tuple[float | None, str]:
    """(score, vector) from Metadata.NVD.CVSSv3, when present; Score may be ""."""
    if not isinstance(metadata, dict):
        return None, ""
    nvd = metadata.get("NVD")
    cvss = nvd.get("CVSSv3") if isinstance(nvd, dict) else None
    if not isinstance(cvss, dict):
        return None, ""
    vector = cvss.get("Vectors")
    return cvss_score(cvss.get("Score")), vector if isinstance(vector, str) else ""


class Reader:
    """How one run reads security documents. Each distinct advisory, and each distinct package
    with its advisories, is built once and shared by every manifest that lists it: a cluster's
    images share most of their base layers, so the same packages and advisories recur in
    hundreds of reports. With `vulnerable_only`, packages without
    vulnerabilities are left out of the reports (nothing after the scan reads them, and they
    are most of an image's packages); a malformed one still makes the document malformed."""

    def __init__(self, *, vulnerable_only: bool = False) -> None:
        self.vulnerable_only = vulnerable_only
        self._advisories: dict[tuple, Vulnerability] = {}
        self._packages: dict[tuple, Feature] = {}
        #: quay_fast.py's: an advisory, or a package's advisories, by a digest of their JSON text.
        self.by_text: dict[bytes, Any] = {}

    def vulnerability(self, doc: Any, where: str) -> Vulnerability:
        key = _advisory_key(doc)
        if key is None:
            return _vulnerability(doc, where)
        found = self._advisories.get(key)
        if found is None:
            found = self._advisories.setdefault(key, _vulnerability(doc, where))
        return found

    def feature(self, doc: Any, where: str) -> Feature:
        if not isinstance(doc, dict):
            return _feature(doc, where, self)
        vulns = doc.get("Vulnerabilities")
        if not isinstance(vulns, list) or not isinstance(doc.get("BaseScores") or [], list) \
                or not isinstance(doc.get("CVEIds") or [], list):
            return _feature(doc, where, self)
        advisories = tuple(self.vulnerability(v, f"{where}.Vulnerabilities[{i}]") for i, v in enumerate(vulns))
        return self.package(doc, where, advisories)

    def package(self, doc: dict, where: str, advisories: tuple[Vulnerability, ...]) -> Feature:
        """The package of `doc`'s own fields with these advisories (BaseScores and CVEIds lists or
        null), built once."""
        # The package's own fields, and its advisories by identity: the Feature kept here holds
        # them, so their ids stay theirs.
        key = (doc.get("Name"), doc.get("Version"), doc.get("VersionFormat"), doc.get("NamespaceName"),
               doc.get("AddedBy"), tuple(doc.get("BaseScores") or ()), tuple(doc.get("CVEIds") or ()),
               tuple(map(id, advisories)))
        try:
            found = self._packages.get(key)
        except TypeError:  # something unhashable in there: built (and judged) as it is
            return _feature(doc, where, self, advisories)
        if found is None:
            found = self._packages.setdefault(key, _feature(doc, where, self, advisories))
        return found

    def skips(self, doc: Any) -> bool:
        # Only a package that says it has none: `{}`, `false` or `""` is malformed, not "none".
        return (self.vulnerable_only and isinstance(doc, dict) and doc.get("Vulnerabilities") in (None, [])
                and isinstance(doc.get("Name"), str) and bool(doc["Name"]))


def _advisory_key(doc: Any) -> tuple | None:
    """Everything a Vulnerability is made of, as a dict key; None when that cannot be (then the
    entry is built as it is, and judged malformed or not)."""
    if not isinstance(doc, dict):
        return None
    metadata = doc.get("Metadata")
    try:
        # The metadata by a digest of its canonical JSON: an exact-size key (what orjson returns
        # has room for more than it holds).
        digest = None if metadata is None else \
            hashlib.blake2b(orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
        key = (doc.get("Name"), doc.get("Severity"), doc.get("NamespaceName"), doc.get("Description"),
               doc.get("Link"), doc.get("FixedBy"), digest)
        hash(key)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return key


def _vulnerability(doc: Any, where: str) -> Vulnerability:
    if not isinstance(doc, dict):
        raise UnexpectedShape(f"{where} is not an object")
    metadata = doc.get("Metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise UnexpectedShape(f"{where}.Metadata is not an object")
    score, vector = _cvss(metadata)
    return Vulnerability(
        name=_text(doc, "Name", where),
        severity=normalize_severity(doc.get("Severity")),
        namespace_name=_text(doc, "NamespaceName", where),
        description=_text(doc, "Description", where),
        link=_text(doc, "Link", where),
        fixed_by=_text(doc, "FixedBy", where),
        metadata=metadata,
        cvss_score=score,
        cvss_vector=vector,
    )


def _feature(doc: Any, where: str, reader: Reader | None = None,
             vulnerabilities: tuple[Vulnerability, ...] | None = None) -> Feature:
    if not isinstance(doc, dict):
        raise UnexpectedShape(f"{where} is not an object")
    name = _text(doc, "Name", where)
    if not name:
        raise UnexpectedShape(f"{where} has no Name")
    vulns = _list(doc, "Vulnerabilities", where)
    return Feature(
        name=name,
        version=_text(doc, "Version", where),
        version_format=_text(doc, "VersionFormat", where),
        namespace_name=_text(doc, "NamespaceName", where),
        added_by=_text(doc, "AddedBy", where),
        base_scores=tuple(s for s in (cvss_score(v) for v in _list(doc, "BaseScores", where))
                          if s is not None),
        cve_ids=tuple(c for c in _list(doc, "CVEIds", where) if isinstance(c, str)),
        vulnerabilities=vulnerabilities if vulnerabilities is not None else tuple(
            (reader.vulnerability if reader else _vulnerability)(v, f"{where}.Vulnerabilities[{i}]")
            for i, v in enumerate(vulns)),
    )


def parse_layer(data: Any, reader: Reader | None = None) -> VulnReport:
    """A report from the `data` part ({"Layer": …}) of a scanned response. Raises UnexpectedShape."""
    if not isinstance(data, dict) or not isinstance(data.get("Layer"), dict):
        raise UnexpectedShape("data has no Layer object")
    layer = data["Layer"]
    # Quay sends "Features": [] for an image without packages; without the list, nothing says
    # the image is clean.
    if layer.get("Features") is None:
        raise UnexpectedShape("Layer has no Features list")
    features = _list(layer, "Features", "Layer")
    return VulnReport(
        namespace_name=_text(layer, "NamespaceName", "Layer"),
        features=tuple(reader.feature(f, f"Layer.Features[{i}]") if reader else _feature(f, f"Layer.Features[{i}]")
                       for i, f in enumerate(features) if reader is None or not reader.skips(f)),
    )


def parse_security_response(doc: Any, reader: Reader | None = None) -> tuple[ScanState, VulnReport | None, str]:
    """(state, report, detail) of a Quay security API document {"status", "data"}.

    Only a "scanned" document carries a report: Quay's UI fixtures put a Layer under other
    statuses too, and it is not to be counted.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
        return ScanState.ERROR, None, f"unexpected security document: {excerpt(repr(doc)[:200])}"
    status = doc["status"]
    if status == "scanned":
        if doc.get("data") is None:
            return ScanState.ERROR, None, "status scanned but the document has no data"
        try:
            return ScanState.SCANNED, parse_layer(doc["data"], reader), ""
        except UnexpectedShape as exc:
            return ScanState.ERROR, None, f"malformed security document: {exc}"
    if status in _STATUS_STATES:
        state, detail = _STATUS_STATES[status]
        return state, None, detail
    return ScanState.ERROR, None, f"unknown scan status {excerpt(status, 40)!r}"


# --- I/O ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuayBackend:
    """A Backend: the manifest security API of one Quay host, at the discovered path template."""

    name: ClassVar[str] = "quay"
    auth: AuthFlow
    scheme: str
    host: str
    template: str
    token: Credential | None
    reader: Reader | None = None

    def scan(self, request: ScanRequest, *, budget: RetryBudget) -> ScanResult:
        ref = request.ref
        page = page_url(self.scheme, self.host, ref)
        if "/" not in ref.repository:
            return ScanResult(ref, ScanState.NOT_FOUND, detail="Quay repositories are namespace/name; this one "
                              "has no namespace", backend=self.name, page_url=page)
        url = f"{self.scheme}://{self.host}{security_path(self.template, ref)}"
        try:
            reply = self.auth.get(url, request=request, host=self.host, budget=budget, label="registry",
                                  headers={"Accept": "application/json"},
                                  first=(self.token,) if self.token else (), definite=frozenset({SCANNER_FAILED}))
            if reply.status == SCANNER_FAILED:
                return ScanResult(ref, ScanState.FAILED, detail="the registry's scanner failed (HTTP 520)",
                                  backend=self.name, page_url=page)
            if reply.status == 404:
                return ScanResult(ref, ScanState.NOT_FOUND, detail="the registry does not know this manifest "
                                  "(HTTP 404)", backend=self.name, page_url=page)
            if reply.status != 200:
                state, detail = state_for_status(reply, "registry")
                return ScanResult(ref, state, detail=detail, backend=self.name, page_url=page)
            # The quick way reads a well-formed document (building few objects the collector
            # tracks); anything else is judged the careful way.
            reader = self.reader
            quick = reply.decoded(lambda body: read_scanned(body, reader)) if reader is not None else None
            if quick is None:
                with gc_paused():  # a report is thousands of new objects, none in a cycle
                    quick = parse_security_response(reply.json("security response"), reader)
            state, report, detail = quick
        except ScanFailure as exc:
            return ScanResult(ref, exc.state, detail=exc.detail, backend=self.name, page_url=page)
        return ScanResult(ref, state, report=report, detail=detail, backend=self.name, page_url=page)


def discover(*, client: HttpClient, scheme: str, host: str, budget: RetryBudget) -> tuple[str, str]:
    """(path template, '') when `host` offers the manifest security API, else ('', why).

    Raises Unreachable when the host cannot be asked at all (that is not "no API")."""
    reply = client.request("GET", f"{scheme}://{host}{DISCOVERY_PATH}", budget=budget, label="registry",
                           headers={"Accept": "application/json"})
    if reply.status != 200:
        return "", f"{DISCOVERY_PATH} answered HTTP {reply.status}"
    try:
        return parse_capabilities(reply.json("app-capabilities"))
    except ScanFailure:
        return "", f"app-capabilities is not JSON: {excerpt(reply.body, 60)}"
