"""The seam every registry backend stands behind: one scan call, one result, one shape error."""
from __future__ import annotations

import inspect

import orjson
import pytest
from requests.structures import CaseInsensitiveDict

from job.model import ImageRef, ScanState
from job.registries.backend import Backend, report_result
from job.registries.clair import ClairBackend
from job.registries.failures import BadResponse
from job.registries.harbor import REPORT_TYPES, HarborBackend, report_from_harbor
from job.registries.http import Reply
from job.registries.quay import QuayBackend

REF = ImageRef("harbor.example", "team/app", "sha256:" + "a" * 64)
ABSENT = "Harbor holds no vulnerability report for this artifact"


def _reply(status: int, body: bytes, content_type: str = "application/json") -> Reply:
    return Reply(status, CaseInsensitiveDict({"Content-Type": content_type}), body, "https://harbor.example/x")


def _result(status: int, body: bytes, content_type: str = "application/json"):
    return report_result(REF, _reply(status, body, content_type), backend="harbor", label="Harbor",
                         parse=report_from_harbor, absent=ABSENT)


@pytest.mark.parametrize("backend", [QuayBackend, ClairBackend, HarborBackend])
def test_every_backend_answers_the_protocols_scan_call(backend):
    wanted = inspect.signature(Backend.scan).parameters
    got = inspect.signature(backend.scan).parameters
    assert [(p.name, p.kind, p.annotation) for p in got.values()] == \
        [(p.name, p.kind, p.annotation) for p in wanted.values()]
    assert inspect.signature(backend.scan).return_annotation == "ScanResult"
    assert isinstance(backend.name, str) and backend.name


def test_backends_have_distinct_names():
    assert len({QuayBackend.name, ClairBackend.name, HarborBackend.name}) == 3


def test_a_status_other_than_200_is_classified_with_who_answered():
    result = _result(503, b"down")
    assert (result.state, result.detail, result.backend) == (ScanState.UNREACHABLE, "Harbor unavailable (HTTP 503)",
                                                             "harbor")
    assert result.report is None


def test_a_document_of_the_wrong_shape_is_an_error_naming_the_backend():
    result = _result(200, b"[]")
    assert (result.state, result.detail) == (ScanState.ERROR, "malformed Harbor report: not a JSON object")


def test_no_report_in_the_document_is_not_found_with_the_backends_reason():
    result = _result(200, b"{}")
    assert (result.state, result.detail) == (ScanState.NOT_FOUND, ABSENT)


def test_a_report_is_scanned():
    doc = {REPORT_TYPES[0]: {"vulnerabilities": [{"id": "CVE-2024-1", "package": "openssl", "version": "3.0",
                                                   "severity": "High"}]}}
    result = _result(200, orjson.dumps(doc))
    assert result.state is ScanState.SCANNED and result.detail == ""
    assert [(f.name, [v.name for v in f.vulnerabilities]) for f in result.report.features] == \
        [("openssl", ["CVE-2024-1"])]


def test_a_body_that_is_not_json_is_left_to_the_callers_scan_failure():
    with pytest.raises(BadResponse, match="Harbor vulnerability report is not JSON"):
        _result(200, b"<html>login</html>", "text/html")
