"""Quay security API documents → (state, report, detail), on every real sample.

The expected counts were read off the sample files independently (features listed, features
with at least one vulnerability, vulnerabilities in all, per severity).
"""
from __future__ import annotations

from collections import Counter

import pytest
from registry_compat import compat_json

from job.model import ImageRef, ScanState
from job.registries.quay import page_url, parse_capabilities, parse_layer, parse_security_response, security_path

DIGEST = "sha256:" + "ab" * 32


def _counts(report):
    vulns = [v for f in report.features for v in f.vulnerabilities]
    return len(report.features), len(report.vulnerable_features), len(vulns), Counter(v.severity for v in vulns)


@pytest.mark.parametrize("name, features, vulnerable, vulns, severities", [
    ("securityinformation.json", 188, 33, 89, {"Medium": 19, "Low": 68, "High": 1, "Unknown": 1}),
    ("mixedVulns.json", 49, 29, 41, {"Critical": 3, "High": 12, "Medium": 22, "Low": 2, "Unknown": 2}),
    ("noVulns.json", 20, 0, 0, {}),
    ("noPackages.json", 0, 0, 0, {}),
])
def test_scanned_samples_give_every_package_and_vulnerability(name, features, vulnerable, vulns, severities):
    state, report, detail = parse_security_response(compat_json("quay", name))
    assert state is ScanState.SCANNED and detail == ""
    assert _counts(report) == (features, vulnerable, vulns, Counter(severities))


@pytest.mark.parametrize("name, state, detail", [
    ("queued.json", ScanState.QUEUED, "queued for scanning at the registry"),
    ("failed.json", ScanState.FAILED, "the registry's scanner failed on this manifest"),
    ("unsupported.json", ScanState.UNSUPPORTED, "the registry's scanner does not support this manifest"),
])
def test_ui_fixtures_with_a_layer_but_another_status_are_never_counted(name, state, detail):
    doc = compat_json("quay", name)
    assert doc["data"]["Layer"] is not None  # the fixture carries a Layer anyway
    assert parse_security_response(doc) == (state, None, detail)


def test_a_non_scanned_status_with_vulnerabilities_in_its_layer_is_still_not_counted():
    doc = compat_json("quay", "mixedVulns.json")
    doc["status"] = "queued"
    assert parse_security_response(doc) == (ScanState.QUEUED, None, "queued for scanning at the registry")


def test_manifest_layer_too_large_is_unsupported():
    assert parse_security_response({"status": "manifest_layer_too_large", "data": None}) == (
        ScanState.UNSUPPORTED, None, "manifest layer too large")


@pytest.mark.parametrize("name, features, vulnerable, vulns", [
    ("securityinformation_deduped.json", 461, 3, 3),
    ("securityinformation_withenrichments.json", 57, 7, 26),
])
def test_data_only_samples(name, features, vulnerable, vulns):
    report = parse_layer(compat_json("quay", name))
    assert _counts(report)[:3] == (features, vulnerable, vulns)


def test_a_vulnerability_keeps_its_fields_and_raw_metadata():
    doc = compat_json("quay", "securityinformation.json")
    _, report, _ = parse_security_response(doc)
    curl = next(f for f in report.features if f.name == "curl")
    assert curl.version == "7.61.1-30.el8_8.3"
    assert curl.added_by == "sha256:e623cf60cbc41de800d3ca5284181bd9168fc0be44b2fbfc05ba78cefcf315b1"
    assert curl.base_scores == (6.5, 3.7, 8.8, 3.7)
    assert curl.cve_ids == ("CVE-2023-27534", "CVE-2023-28322", "CVE-2023-38546", "CVE-2023-46218")
    first = curl.vulnerabilities[0]
    assert first.name == "curl: information disclosure by exploiting a mixed case flaw (moderate)"
    assert first.severity == "Medium"
    assert first.link == "https://access.redhat.com/security/cve/CVE-2023-46218"
    assert first.fixed_by == ""
    assert first.cvss_score == 6.5
    assert first.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"
    raw = next(f for f in doc["data"]["Layer"]["Features"] if f["Name"] == "curl")["Vulnerabilities"][0]
    assert first.metadata == raw["Metadata"]


def test_an_empty_cvss_score_is_no_score():
    report = parse_layer(compat_json("quay", "securityinformation_deduped.json"))
    vuln = next(v for f in report.features for v in f.vulnerabilities)
    assert vuln.metadata["NVD"]["CVSSv3"]["Score"] == ""
    assert vuln.cvss_score is None and vuln.cvss_vector == ""
    assert vuln.fixed_by == "0:2.2.20-3.el8_6"


def test_severity_words_are_normalised():
    doc = {"status": "scanned", "data": {"Layer": {"Features": [{"Name": "p", "Version": "1", "Vulnerabilities": [
        {"Name": "a", "Severity": "critical"}, {"Name": "b", "Severity": "Important"},
        {"Name": "c", "Severity": "bogus"}, {"Name": "d", "Metadata": None}]}]}}}
    _, report, _ = parse_security_response(doc)
    assert [v.severity for v in report.features[0].vulnerabilities] == ["Critical", "High", "Unknown", "Unknown"]
    assert report.features[0].vulnerabilities[3].metadata is None


@pytest.mark.parametrize("doc, words", [
    ([], "unexpected security document"),
    ({"data": {}}, "unexpected security document"),
    ({"status": "scanned", "data": None}, "has no data"),
    ({"status": "scanned", "data": {"Layer": {"Features": "nope"}}}, "Layer.Features is not a list"),
    ({"status": "scanned", "data": {"Layer": {"Features": [{"Name": "x", "Vulnerabilities": [42]}]}}},
     "Layer.Features[0].Vulnerabilities[0] is not an object"),
    ({"status": "scanned", "data": {"Layer": {"Features": [{"Version": "1"}]}}}, "Layer.Features[0] has no Name"),
    ({"status": "scanned", "data": {"Layer": {"Features": [{"Name": "x", "Vulnerabilities": [
        {"Name": "v", "Metadata": "text"}]}]}}}, "Metadata is not an object"),
    ({"status": "<b>exploded</b>"}, "unknown scan status 'exploded'"),
])
def test_wrong_shapes_are_errors_with_a_short_reason(doc, words):
    state, report, detail = parse_security_response(doc)
    assert state is ScanState.ERROR and report is None
    assert words in detail and len(detail) < 200


def test_discovery_document_of_the_sample_offers_the_path_template():
    template, why = parse_capabilities(compat_json("quay", "app-capabilities.json"))
    assert why == ""
    assert template == "/api/v1/repository/{namespace}/{reponame}/manifest/{digest}/security"


@pytest.mark.parametrize("doc, words", [
    ({"appName": "io.quay"}, "not a capabilities document"),
    ({"capabilities": {"io.quay.view-image": {}}}, "does not offer io.quay.manifest-security"),
    ({"capabilities": {"io.quay.manifest-security": {"rest-api-template": "https://x/api/{digest}"}}},
     "template lacks"),
    ("<html>", "not a capabilities document"),
])
def test_documents_without_the_capability_say_why(doc, words):
    template, why = parse_capabilities(doc)
    assert template == "" and words in why


def test_security_path_and_page_url():
    ref = ImageRef("quay.example.com", "org/team/app", DIGEST)
    template = "/api/v1/repository/{namespace}/{reponame}/manifest/{digest}/security"
    assert security_path(template, ref) == (f"/api/v1/repository/org/team/app/manifest/{DIGEST}/security"
                                            "?vulnerabilities=true")
    assert page_url("https", "quay.example.com", ref) == (
        f"https://quay.example.com/repository/org/team/app/manifest/{DIGEST}?tab=vulnerabilities")
