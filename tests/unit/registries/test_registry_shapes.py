"""An answer of the wrong shape on the fields that decide "clean" is an error, never a clean scan.

Each backend's real samples still read as they did; every malformed variant of the fields that
decide whether an image has vulnerabilities is refused with a message naming the field.
"""
from __future__ import annotations

import copy

import pytest
from registry_compat import compat_json

from job.model import ScanState
from job.registries import clair, harbor
from job.registries.backend import UnexpectedShape
from job.registries.quay import Reader, parse_security_response

pytestmark = pytest.mark.fault

V11 = "application/vnd.security.vulnerability.report; version=1.1"


def _quay(layer: dict) -> dict:
    return {"status": "scanned", "data": {"Layer": layer}}


QUAY_MALFORMED = {
    "no Features": (_quay({"Name": "x"}), "Layer has no Features list"),
    "Features null": (_quay({"Name": "x", "Features": None}), "Layer has no Features list"),
    "Features object": (_quay({"Name": "x", "Features": {}}), "Layer.Features is not a list"),
    "Vulnerabilities object": (_quay({"Name": "x", "Features": [{"Name": "a", "Vulnerabilities": {}}]}),
                               "Layer.Features[0].Vulnerabilities is not a list"),
    "Vulnerabilities false": (_quay({"Name": "x", "Features": [{"Name": "a", "Vulnerabilities": False}]}),
                              "Layer.Features[0].Vulnerabilities is not a list"),
    "Vulnerabilities empty string": (_quay({"Name": "x", "Features": [{"Name": "a", "Vulnerabilities": ""}]}),
                                     "Layer.Features[0].Vulnerabilities is not a list"),
    "feature not an object": (_quay({"Name": "x", "Features": [0]}), "Layer.Features[0] is not an object"),
    "Layer not an object": ({"status": "scanned", "data": {"Layer": []}}, "data has no Layer object"),
    "data a list": ({"status": "scanned", "data": []}, "data has no Layer object"),
}


@pytest.mark.parametrize("vulnerable_only", [False, True], ids=["all packages", "vulnerable only"])
@pytest.mark.parametrize("case", list(QUAY_MALFORMED))
def test_quay_malformed_scanned_answers_are_errors(case, vulnerable_only):
    doc, why = QUAY_MALFORMED[case]
    state, report, detail = parse_security_response(doc, Reader(vulnerable_only=vulnerable_only))
    assert (state, report) == (ScanState.ERROR, None)
    assert detail == f"malformed security document: {why}"


@pytest.mark.parametrize("sample, features", [("noPackages.json", 0), ("noVulns.json", 20),
                                              ("securityinformation.json", 188)])
def test_quay_real_answers_still_read(sample, features):
    state, report, detail = parse_security_response(compat_json("quay", sample))
    assert (state, detail, len(report.features)) == (ScanState.SCANNED, "", features)


def test_quay_feature_without_a_vulnerabilities_key_has_none():
    # Clair v2 behind older Quay omitted an empty list (Go's omitempty): that is no vulnerability.
    state, report, _ = parse_security_response(_quay({"Name": "x", "Features": [{"Name": "a"},
                                                                                 {"Name": "b", "Vulnerabilities": None}]}))
    assert state is ScanState.SCANNED and [f.vulnerabilities for f in report.features] == [(), ()]


HARBOR_MALFORMED = {
    "empty report object": ({V11: {}}, "the report has no vulnerabilities list"),
    "vulnerabilities null": ({V11: {"vulnerabilities": None}}, "the report has no vulnerabilities list"),
    "vulnerabilities object": ({V11: {"vulnerabilities": {}}}, "vulnerabilities is not a list"),
    "vulnerabilities string": ({V11: {"vulnerabilities": ""}}, "vulnerabilities is not a list"),
    "report a list": ({V11: []}, "the report is not an object"),
    "unknown report type": ({"application/vnd.example.vuln.report; version=9": {"vulnerabilities": []}},
                            "no report of a type the job asked for (got application/vnd.example.vuln.report; "
                            "version=9)"),
    "scan still running": ({V11: {"report_id": "r", "scan_status": "Running", "complete_percent": 40}},
                           "the scan is not finished (scan_status Running)"),
    "scan overview of a finished scan": ({V11: {"scan_status": "Success", "summary": {"total": 0}}},
                                         "the report has no vulnerabilities list"),
    "item not an object": ({V11: {"vulnerabilities": ["CVE-1"]}}, "vulnerabilities[0] is not an object"),
}


@pytest.mark.parametrize("case", list(HARBOR_MALFORMED))
def test_harbor_malformed_answers_are_errors(case):
    doc, why = HARBOR_MALFORMED[case]
    with pytest.raises(UnexpectedShape) as raised:
        harbor.report_from_harbor(doc)
    assert str(raised.value) == why


def test_harbor_real_answer_and_a_real_clean_one_still_read():
    sample = compat_json("harbor", "additions_vulnerabilities.json")
    assert [f.name for f in harbor.report_from_harbor(sample).features] == ["bash"]
    clean = copy.deepcopy(sample)
    clean[V11]["vulnerabilities"] = []
    assert harbor.report_from_harbor(clean).features == ()
    assert harbor.report_from_harbor({}) is None  # Harbor holds no report yet: not a clean scan either


def _clair(**changes) -> dict:
    doc = {"manifest_hash": "sha256:" + "0" * 64, "packages": {"1": {"name": "bash", "version": "5"}},
           "distributions": {}, "environments": {}, "vulnerabilities": {"v": {"name": "CVE-1"}},
           "package_vulnerabilities": {"1": ["v"]}}
    for key, value in changes.items():
        if value is KeyError:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


CLAIR_MALFORMED = {
    "no packages": (_clair(packages=KeyError), "packages is not an object"),
    "packages null": (_clair(packages=None), "packages is not an object"),
    "no vulnerabilities": (_clair(vulnerabilities=KeyError), "vulnerabilities is not an object"),
    "vulnerabilities null": (_clair(vulnerabilities=None), "vulnerabilities is not an object"),
    "vulnerabilities list": (_clair(vulnerabilities=[]), "vulnerabilities is not an object"),
    "no package_vulnerabilities": (_clair(package_vulnerabilities=KeyError),
                                   "package_vulnerabilities is not an object"),
    "package_vulnerabilities null": (_clair(package_vulnerabilities=None), "package_vulnerabilities is not an object"),
    "package_vulnerabilities list": (_clair(package_vulnerabilities=[["v"]]),
                                     "package_vulnerabilities is not an object"),
    "a package's ids null": (_clair(package_vulnerabilities={"1": None}), "package_vulnerabilities[1] is not a list"),
    "a package's ids a string": (_clair(package_vulnerabilities={"1": "v"}),
                                 "package_vulnerabilities[1] is not a list"),
    "a package's ids an object": (_clair(package_vulnerabilities={"1": {}}),
                                  "package_vulnerabilities[1] is not a list"),
    "unknown vulnerability id": (_clair(package_vulnerabilities={"1": ["w"]}),
                                 "package_vulnerabilities[1] names an unknown vulnerability"),
}


@pytest.mark.parametrize("case", list(CLAIR_MALFORMED))
def test_clair_malformed_reports_are_errors(case):
    doc, why = CLAIR_MALFORMED[case]
    with pytest.raises(UnexpectedShape) as raised:
        clair.report_from_clair(doc)
    assert str(raised.value) == why


def test_clair_real_report_and_a_real_clean_one_still_read():
    assert len(clair.report_from_clair(compat_json("clair", "vulnerability_report.json")).features) == 57
    clean = _clair(vulnerabilities={}, package_vulnerabilities={})
    assert [f.vulnerabilities for f in clair.report_from_clair(clean).features] == [()]
