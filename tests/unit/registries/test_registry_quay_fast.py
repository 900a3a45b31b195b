"""The quick way through Quay's security documents (job.registries.quay_fast) reads exactly what
the careful way reads, or leaves the document to it: the result a scan gets is the same, messages
of malformed documents included, whichever way it went."""
from __future__ import annotations

import copy
import json

import orjson
import pytest
from registry_compat import COMPAT, compat_json
from test_registry_shapes import QUAY_MALFORMED

from job.codec import decode_json
from job.model import ScanState
from job.registries.quay import Reader, parse_security_response
from job.registries.quay_fast import read_scanned

SAMPLES = ("securityinformation.json", "securityinformation_deduped.json", "securityinformation_withenrichments.json",
           "mixedVulns.json", "noVulns.json", "noPackages.json", "queued.json", "failed.json", "unsupported.json")
BOTH = pytest.mark.parametrize("vulnerable_only", [False, True], ids=["all packages", "vulnerable only"])


def scan_reads(body: bytes, reader: Reader):
    """What QuayBackend.scan makes of a 200 answer's body."""
    return read_scanned(body, reader) or parse_security_response(decode_json(body), reader)


def careful(body: bytes, vulnerable_only: bool):
    return parse_security_response(decode_json(body), Reader(vulnerable_only=vulnerable_only))


def _scanned(features: list, **layer) -> dict:
    return {"status": "scanned", "data": {"Layer": {"Name": "x", "NamespaceName": "debian:12", **layer,
                                                    "Features": features}}}


def _advisory(name: str = "CVE-2024-1", **changes) -> dict:
    return {"Name": name, "Severity": "High", "NamespaceName": "debian:12", "Link": "https://x/" + name,
            "Description": "a flaw", "FixedBy": "1.2", **changes,
            "Metadata": changes.pop("Metadata", {"NVD": {"CVSSv3": {"Score": 7.5, "Vectors": "AV:N"}}})}


def _package(name: str = "openssl", advisories: list | None = None, **changes) -> dict:
    advisories = [_advisory()] if advisories is None else advisories
    return {"Name": name, "Version": "1.0", "VersionFormat": "dpkg", "NamespaceName": "debian:12",
            "AddedBy": "sha256:ab", "BaseScores": [7.5] * len(advisories),
            "CVEIds": [a["Name"] for a in advisories if isinstance(a, dict)], "Vulnerabilities": advisories,
            **changes}


def _bytes(doc) -> bytes:
    return json.dumps(doc).encode()


# Documents the quick way must read, and read as the careful way does.
WELL_FORMED = {
    "one package": _scanned([_package()]),
    "clean and vulnerable": _scanned([_package("zlib", []), _package(), _package("bash", None, Vulnerabilities=None)]),
    "no Vulnerabilities key": _scanned([{"Name": "zlib", "Version": "1"}, _package()]),
    "null fields": _scanned([_package(Version=None, AddedBy=None, BaseScores=None, CVEIds=None)]),
    "scores as strings and junk": _scanned([_package(BaseScores=["7.5", "", "x", True, None, 3])]),
    "CVE ids not all strings": _scanned([_package(CVEIds=["CVE-1", 2, None])]),
    "null layer namespace": _scanned([_package()], NamespaceName=None),
    "advisory without metadata": _scanned([_package(advisories=[_advisory(Metadata=None)])]),
    "extra fields everywhere": {"status": "scanned", "extra": [1], "data": {"Layer": {
        "Features": [_package(Extra={"a": [1]})], "IndexedByVersion": 4}, "More": True}},
    "duplicate keys, the last wins": None,  # built below: JSON text, not a dict
    "integers beyond 64 bits": _scanned([_package(BaseScores=[123456789012345678901234567890])]),
    "no features": _scanned([]),
}
DUPLICATE = (b'{"status": "scanned", "data": {"Layer": {"Features": [{"Name": "a", "Name": "openssl", '
             b'"Version": "1", "Vulnerabilities": [{"Name": "CVE-1", "Severity": "Low", "Severity": "High"}]}]}}}')

# Documents the quick way leaves to the careful way (which errs, or reads what it can).
ODD = {
    **{f"malformed: {case}": doc for case, (doc, _) in QUAY_MALFORMED.items()},
    "Name not a string": _scanned([_package(Name=7)]),
    "no Name on a vulnerable package": _scanned([_package(Name="")]),
    "Version not a string": _scanned([_package(Version=1)]),
    "BaseScores a string": _scanned([_package(BaseScores="7.5")]),
    "BaseScores an empty object": _scanned([_package(BaseScores={})]),
    "CVEIds an object": _scanned([_package(CVEIds={"a": 1})]),
    "advisory not an object": _scanned([_package(advisories=[_advisory(), "CVE-2"])]),
    "advisory Metadata a list": _scanned([_package(advisories=[_advisory(Metadata=[1])])]),
    "advisory Name not a string": _scanned([_package(advisories=[_advisory(Name=5)])]),
    "layer namespace not a string": _scanned([_package()], NamespaceName=["x"]),
    "second package malformed": _scanned([_package(), _package("bash", Version=[])]),
    "scanned without data": {"status": "scanned", "data": None},
    "status not a string": {"status": 1, "data": None},
    "queued": {"status": "queued", "data": None},
    "unknown status": {"status": "wat", "data": None},
    "not an object": [1, 2],
}
ODD_TEXT = {
    "NaN": b'{"status": "scanned", "data": {"Layer": {"Features": [{"Name": "a", "BaseScores": [NaN]}]}}}',
    "lone surrogate": b'{"status": "scanned", "data": {"Layer": {"Features": [{"Name": "\\ud800"}]}}}',
    "number out of range": b'{"status": "scanned", "data": {"Layer": {"Features": [{"Name": "a", "Version": 1e400}]}}}',
    # JSON that orjson reads, nested deeper than msgspec does (it raises RecursionError).
    "nested 1000 deep": b'{"status": "scanned", "x": ' + b"[" * 1000 + b"]" * 1000
                        + b', "data": {"Layer": {"Features": []}}}',
}
# Bodies the careful way refuses as not JSON (Reply.json raises BadResponse): the quick way must
# not read them either. msgspec checks neither the UTF-8 of what it skips nor stops at orjson's depth.
_SKIPPED = b'{"Name": "zlib", "Vulnerabilities": [], "BaseScores": %s}'
NOT_JSON = {
    "invalid UTF-8 in an unknown field": b'{"status": "scanned", "x": "\xff", "data": {"Layer": {"Features": []}}}',
    "invalid UTF-8 in a package left out": b'{"status": "scanned", "data": {"Layer": {"Features": ['
                                           + _SKIPPED % b'["\xff"]' + b']}}}',
    "nested too deep": b'{"status": "scanned", "x": ' + b"[" * 5000 + b"]" * 5000
                       + b', "data": {"Layer": {"Features": []}}}',
}


def _well_formed(case: str) -> bytes:
    return DUPLICATE if WELL_FORMED[case] is None else _bytes(WELL_FORMED[case])


@BOTH
@pytest.mark.parametrize("sample", SAMPLES)
def test_real_answers_read_the_same_either_way(sample, vulnerable_only):
    body = (COMPAT / "quay" / sample).read_bytes() if (COMPAT / "quay" / sample).exists() else \
        _bytes(compat_json("quay", sample))
    got = scan_reads(body, Reader(vulnerable_only=vulnerable_only))
    assert got == careful(body, vulnerable_only)
    if got[0] is ScanState.SCANNED:  # read the quick way, not left to the careful one
        assert read_scanned(body, Reader(vulnerable_only=vulnerable_only)) == got


@BOTH
@pytest.mark.parametrize("case", list(WELL_FORMED))
def test_well_formed_documents_are_read_the_quick_way_as_the_careful_way_reads_them(case, vulnerable_only):
    body = _well_formed(case)
    quick = read_scanned(body, Reader(vulnerable_only=vulnerable_only))
    assert quick is not None
    assert quick == careful(body, vulnerable_only)


@BOTH
@pytest.mark.parametrize("case", list(ODD) + list(ODD_TEXT))
def test_anything_else_is_left_to_the_careful_way(case, vulnerable_only):
    body = ODD_TEXT[case] if case in ODD_TEXT else _bytes(ODD[case])
    reader = Reader(vulnerable_only=vulnerable_only)
    assert read_scanned(body, reader) is None
    assert scan_reads(body, reader) == careful(body, vulnerable_only)


@BOTH
@pytest.mark.parametrize("case", list(NOT_JSON))
def test_what_the_careful_way_refuses_as_not_json_is_not_read_the_quick_way(case, vulnerable_only):
    with pytest.raises(ValueError):
        decode_json(NOT_JSON[case])
    assert read_scanned(NOT_JSON[case], Reader(vulnerable_only=vulnerable_only)) is None


def test_malformed_documents_keep_their_messages():
    for case, (doc, why) in QUAY_MALFORMED.items():
        assert scan_reads(_bytes(doc), Reader(vulnerable_only=True)) == (
            ScanState.ERROR, None, f"malformed security document: {why}"), case


def test_an_advisory_read_either_way_is_one_object_in_every_report():
    doc = compat_json("quay", "mixedVulns.json")
    reader = Reader()
    _, careful_report, _ = parse_security_response(copy.deepcopy(doc), reader)
    _, quick_report, _ = read_scanned(orjson.dumps(doc), reader)
    _, again, _ = read_scanned(json.dumps(doc, indent=2).encode(), reader)  # other text, same advisories
    assert careful_report == quick_report == again
    for other in (quick_report, again):
        pairs = zip((v for f in careful_report.features for v in f.vulnerabilities),
                    (v for f in other.features for v in f.vulnerabilities))
        assert all(x is y for x, y in pairs)
        assert all(x is y for x, y in zip(careful_report.features, other.features))
