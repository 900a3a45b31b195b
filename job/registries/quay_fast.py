"""The quick way through a well-formed Quay security document. Pure.

msgspec decodes the document straight into what the job reads: each package's own fields, and
each advisory left as its JSON text. A package without vulnerabilities then costs no dicts, and
an advisory that an earlier report listed costs a digest of its text (Reader.raw_vulnerability);
decoding every package into dicts and keying every advisory by its canonical JSON was most of the
CPU of a registry answer (bench/bench_scan.py).

It gives parse_security_response's result or none: a document it does not expect (another
status, a missing or odd-typed field, JSON that msgspec refuses, a malformed entry) is left to
parse_security_response, which judges it as it always did, messages included.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from job.model import ScanState, VulnReport
from job.registries.backend import UnexpectedShape

if TYPE_CHECKING:
    from job.registries.quay import Reader


class _Package(msgspec.Struct):
    Name: Any = None
    Version: Any = None
    VersionFormat: Any = None
    NamespaceName: Any = None
    AddedBy: Any = None
    BaseScores: Any = None
    CVEIds: Any = None
    Vulnerabilities: list[msgspec.Raw] | None = None


class _Layer(msgspec.Struct):
    NamespaceName: Any = None
    Features: list[_Package] | None = None


class _Data(msgspec.Struct):
    Layer: _Layer | None = None


class _Document(msgspec.Struct):
    status: Any = None
    data: _Data | None = None


_DECODER = msgspec.json.Decoder(_Document)


def read_scanned(body: bytes | bytearray, reader: Reader) -> tuple[ScanState, VulnReport, str] | None:
    """(SCANNED, report, '') of a well-formed "scanned" document, the same as
    parse_security_response(decoded body, reader) gives; None for any other document."""
    try:
        doc = _DECODER.decode(body)
    except (msgspec.MsgspecError, ValueError):  # UnicodeDecodeError too
        return None
    layer = doc.data.Layer if doc.status == "scanned" and doc.data is not None else None
    if layer is None or layer.Features is None or not isinstance(layer.NamespaceName, (str, type(None))):
        return None
    features = []
    try:
        for i, package in enumerate(layer.Features):
            vulns = package.Vulnerabilities
            name = package.Name
            if not vulns and reader.vulnerable_only and isinstance(name, str) and name:
                continue
            where = f"Layer.Features[{i}]"
            own = {"Name": name, "Version": package.Version, "VersionFormat": package.VersionFormat,
                   "NamespaceName": package.NamespaceName, "AddedBy": package.AddedBy,
                   "BaseScores": package.BaseScores, "CVEIds": package.CVEIds}
            if vulns is None:  # kept (not --vulnerable-only, or no Name): judged as it always was
                features.append(reader.feature({**own, "Vulnerabilities": None}, where))
                continue
            if not isinstance(package.BaseScores or [], list) or not isinstance(package.CVEIds or [], list):
                return None
            advisories = tuple(reader.raw_vulnerability(memoryview(raw), f"{where}.Vulnerabilities[{j}]")
                               for j, raw in enumerate(vulns))
            features.append(reader.package(own, where, advisories))
    except (UnexpectedShape, ValueError):
        return None
    return ScanState.SCANNED, VulnReport(namespace_name=layer.NamespaceName or "", features=tuple(features)), ""
