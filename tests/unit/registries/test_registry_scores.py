"""A CVSS score from a registry is a number from 0 to 10, or no score.

JSON numbers have no bound: a registry (or a damaged stage file) can send a 400-digit integer,
1e400, NaN or Infinity (decoded by the careful JSON path, as Python's json reads them), or a score
no CVSS version gives. Each is no score, as an empty one is: never a crash (a 400-digit integer
does not fit a float), never a NaN that sorts the reports differently from run to run.
"""
from __future__ import annotations

import json
import math

import pytest

from job.codec import decode_json
from job.model import severity_from_cvss
from job.registries import quay_fast
from job.registries.clair import report_from_clair
from job.registries.harbor import report_from_harbor
from job.registries.quay import Reader, parse_security_response
from tests.unit.registries.test_registry_clair_harbor_convert import _tiny_report

HUGE = "1" + "0" * 400
#: (JSON text of a score, the score kept)
SCORES = [("7.5", 7.5), ("10", 10.0), ("0", 0.0), (HUGE, None), ("1e400", None), ("-1e400", None), ("NaN", None),
          ("Infinity", None), ("-0.5", None), ("10.5", None), ("true", None), ('"7.5"', 7.5), ('"NaN"', None),
          ('"1e999"', None), ('"' + HUGE + '"', None)]


def quay_text(score: str) -> bytes:
    return ('{"status": "scanned", "data": {"Layer": {"NamespaceName": "debian:12", "Features": [{"Name": "bash", '
            '"Version": "5.2", "BaseScores": [' + score + ', 5.0], "CVEIds": ["CVE-1"], "Vulnerabilities": '
            '[{"Name": "CVE-1", "Severity": "High", "Metadata": {"NVD": {"CVSSv3": {"Score": ' + score +
            ', "Vectors": "CVSS:3.1/AV:N"}}}}]}]}}}').encode()


@pytest.mark.parametrize("text, kept", SCORES, ids=[t[:12] for t, _ in SCORES])
def test_a_quay_score_is_a_cvss_score_or_none_both_ways(text: str, kept: float | None) -> None:
    body = quay_text(text)
    _, careful, _ = parse_security_response(decode_json(body))
    quick = quay_fast.read_scanned(body, Reader())
    for report in (careful, None if quick is None else quick[1]):
        if report is None:  # the quick reader leaves what it does not expect to the careful one
            continue
        (package,) = report.features
        assert package.vulnerabilities[0].cvss_score == kept
        assert package.base_scores == ((kept, 5.0) if kept is not None else (5.0,))


@pytest.mark.parametrize("text, kept", [s for s in SCORES if not s[0].startswith('"')],
                         ids=[t[:12] for t, _ in SCORES if not t.startswith('"')])
def test_a_clair_enrichment_score_is_a_cvss_score_or_none(text: str, kept: float | None) -> None:
    doc = _tiny_report({"normalized_severity": "Unknown", "fixed_in_version": "0"},
                       [json.loads('{"baseScore": %s, "vectorString": "v"}' % text)])
    vuln = report_from_clair(doc).features[0].vulnerabilities[0]
    assert (vuln.cvss_score, vuln.severity) == (kept, severity_from_cvss(kept))


@pytest.mark.parametrize("text, kept", [s for s in SCORES if not s[0].startswith('"')],
                         ids=[t[:12] for t, _ in SCORES if not t.startswith('"')])
def test_a_harbor_score_is_a_cvss_score_or_none(text: str, kept: float | None) -> None:
    key = "application/vnd.security.vulnerability.report; version=1.1"
    item = {"id": "CVE-1", "package": "a", "version": "1", "severity": "High",
            "preferred_cvss": {"score_v3": json.loads(text), "vector_v3": "v"}}
    vuln = report_from_harbor({key: {"vulnerabilities": [item]}}).features[0].vulnerabilities[0]
    assert vuln.cvss_score == kept
    assert vuln.cvss_score is None or math.isfinite(vuln.cvss_score)
