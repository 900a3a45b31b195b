"""Reading many reports in one run: each advisory built once and shared, and (for the scan) only
the vulnerable packages kept, without letting malformed documents through."""
from __future__ import annotations

import copy

from registry_compat import compat_json

from job.model import ScanState
from job.registries.quay import Reader, parse_security_response


def test_the_same_advisory_in_two_reports_is_one_object() -> None:
    doc = compat_json("quay", "mixedVulns.json")
    reader = Reader()
    _, first, _ = parse_security_response(doc, reader)
    _, second, _ = parse_security_response(copy.deepcopy(doc), reader)
    assert first == second
    a = [v for f in first.features for v in f.vulnerabilities]
    b = [v for f in second.features for v in f.vulnerabilities]
    assert all(x is y for x, y in zip(a, b))
    assert parse_security_response(doc) == parse_security_response(doc, Reader())


def test_vulnerable_only_keeps_exactly_the_vulnerable_packages() -> None:
    doc = compat_json("quay", "securityinformation.json")
    _, every, _ = parse_security_response(doc)
    state, report, _ = parse_security_response(doc, Reader(vulnerable_only=True))
    assert state is ScanState.SCANNED
    assert report.features == every.vulnerable_features and len(report.features) == 33


def test_vulnerable_only_still_refuses_malformed_packages() -> None:
    doc = compat_json("quay", "noVulns.json")
    doc["data"]["Layer"]["Features"].append({"Version": "1"})  # no Name: malformed, vulnerable or not
    state, report, detail = parse_security_response(doc, Reader(vulnerable_only=True))
    assert state is ScanState.ERROR and report is None and "has no Name" in detail


def test_advisories_differing_in_anything_stay_apart() -> None:
    doc = compat_json("quay", "mixedVulns.json")
    other = copy.deepcopy(doc)
    feature = next(f for f in other["data"]["Layer"]["Features"] if f.get("Vulnerabilities"))
    feature["Vulnerabilities"][0]["Metadata"] = {**(feature["Vulnerabilities"][0].get("Metadata") or {}), "x": 1}
    reader = Reader()
    _, first, _ = parse_security_response(doc, reader)
    _, second, _ = parse_security_response(other, reader)
    assert first != second


def test_the_same_package_in_two_reports_is_one_object_unless_anything_differs() -> None:
    doc = compat_json("quay", "mixedVulns.json")
    reader = Reader(vulnerable_only=True)
    _, first, _ = parse_security_response(doc, reader)
    _, second, _ = parse_security_response(copy.deepcopy(doc), reader)
    assert all(a is b for a, b in zip(first.features, second.features))
    other = copy.deepcopy(doc)
    feature = next(f for f in other["data"]["Layer"]["Features"] if f.get("Vulnerabilities"))
    feature["AddedBy"] = "sha256:" + "0" * 64  # the same package added by another layer
    _, third, _ = parse_security_response(other, reader)
    changed = next(f for f in third.features if f.added_by == "sha256:" + "0" * 64)
    assert changed not in first.features and changed.vulnerabilities == \
        next(f for f in first.features if f.name == changed.name and f.version == changed.version).vulnerabilities
