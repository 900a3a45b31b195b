"""The quick way through a well-formed Quay security document. Pure.

msgspec decodes the document straight into what the job reads: each package's own fields, and
its advisories left as their JSON text. A package without vulnerabilities then costs no dicts,
and the advisories of a package that an earlier report listed cost a digest of their text
(Reader.by_text): decoding every package into dicts and keying every advisory by its canonical
JSON was most of the CPU of a registry answer (bench/bench_scan.py).

It gives parse_security_response's result or none: a document it does not expect (another
status, a missing or odd-typed field, JSON that msgspec refuses or nests deeper than it reads,
a malformed entry) is left to parse_security_response, which judges it as it always did,
messages included.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from job.codec import decode_json
from job.model import ScanState, Vulnerability, VulnReport
from job.registries.backend import UnexpectedShape

if TYPE_CHECKING:
    from job.registries.quay import Reader


# Never tracked by the cyclic garbage collector: they hold no cycles, and a report has hundreds.
class _Package(msgspec.Struct, gc=False):
    Name: Any = None
    Version: Any = None
    VersionFormat: Any = None
    NamespaceName: Any = None
    AddedBy: Any = None
    # Left as text, absent being null, and decoded for the packages kept only: a list for each
    # package would be an object the garbage collector tracks, and collections cost more than
    # the decoding.
    BaseScores: msgspec.Raw = msgspec.Raw(b"null")
    CVEIds: msgspec.Raw = msgspec.Raw(b"null")
    Vulnerabilities: msgspec.Raw = msgspec.Raw(b"null")


class _Layer(msgspec.Struct, gc=False):
    NamespaceName: Any = None
    Features: list[_Package] | None = None


class _Data(msgspec.Struct, gc=False):
    Layer: _Layer | None = None


class _Document(msgspec.Struct, gc=False):
    status: Any = None
    data: _Data | None = None


_DECODER = msgspec.json.Decoder(_Document)
_ADVISORY_LIST = msgspec.json.Decoder(list[msgspec.Raw] | None)
_ANY = msgspec.json.Decoder()
_EMPTY = msgspec.Raw(b"[]")
_NULL = msgspec.Raw(b"null")


def _advisories(reader: Reader, raw: msgspec.Raw, where: str) -> tuple[Vulnerability, ...] | None:
    """A package's advisories from the JSON text of its Vulnerabilities (None: null). A list of
    them seen in an earlier report costs a digest of its text; an advisory seen before, another."""
    if raw == _EMPTY:
        return ()
    if raw == _NULL:
        return None
    key = hashlib.blake2b(raw, digest_size=16).digest()
    found = reader.by_text.get(key)
    if found is None:
        items = _ADVISORY_LIST.decode(raw)  # not a list: ValidationError, and the careful way says so
        if items is None:
            return None
        found = reader.by_text.setdefault(key, tuple(
            _advisory(reader, item, f"{where}.Vulnerabilities[{j}]") for j, item in enumerate(items)))
    return found


def _advisory(reader: Reader, raw: msgspec.Raw, where: str) -> Vulnerability:
    key = hashlib.blake2b(raw, digest_size=16).digest()
    found = reader.by_text.get(key)
    if found is None:
        found = reader.by_text.setdefault(key, reader.vulnerability(decode_json(bytes(raw)), where))
    return found


def read_scanned(body: bytes | bytearray, reader: Reader) -> tuple[ScanState, VulnReport, str] | None:
    """(SCANNED, report, '') of a well-formed "scanned" document, the same as
    parse_security_response(decoded body, reader) gives; None for any other document."""
    try:
        str(body, "utf-8")  # msgspec checks no UTF-8 in what it skips; the careful way refuses it anywhere
        doc = _DECODER.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # UnicodeDecodeError too
        return None
    layer = doc.data.Layer if doc.status == "scanned" and doc.data is not None else None
    if layer is None or layer.Features is None or not isinstance(layer.NamespaceName, (str, type(None))):
        return None
    features = []
    try:
        for i, package in enumerate(layer.Features):
            where = f"Layer.Features[{i}]"
            vulns = _advisories(reader, package.Vulnerabilities, where)
            name = package.Name
            if not vulns and reader.vulnerable_only and isinstance(name, str) and name:
                continue
            scores, ids = _ANY.decode(package.BaseScores), _ANY.decode(package.CVEIds)
            own = {"Name": name, "Version": package.Version, "VersionFormat": package.VersionFormat,
                   "NamespaceName": package.NamespaceName, "AddedBy": package.AddedBy,
                   "BaseScores": scores, "CVEIds": ids}
            if vulns is None:  # kept (not --vulnerable-only, or no Name): judged as it always was
                features.append(reader.feature({**own, "Vulnerabilities": None}, where))
            elif isinstance(scores or [], list) and isinstance(ids or [], list):
                features.append(reader.package(own, where, vulns))
            else:
                return None
    except (msgspec.MsgspecError, UnexpectedShape, ValueError, RecursionError):
        return None
    return ScanState.SCANNED, VulnReport(namespace_name=layer.NamespaceName or "", features=tuple(features)), ""
