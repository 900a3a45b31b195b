"""Clair v4 and Harbor reports → the same VulnReport as Quay's API gives.

Oracle for Clair: Quay's own test data holds the same two Clair reports converted by Quay
(compat/quay/securityinformation_withenrichments.json for compat/clair/vulnerability_report.json,
securityinformation.json for vulnerability_report_large.json: same manifest digests).
"""
from __future__ import annotations

import json
import time

import jwt
import pytest
from registry_compat import compat_json

from job.errors import ConfigError
from job.registries.backend import UnexpectedShape
from job.registries.clair import decode_psk, index_body, make_jwt, report_from_clair
from job.registries.distribution import LayerRef
from job.registries.harbor import additions_path, report_from_harbor
from job.registries.quay import parse_layer


def _comparable(report):
    """Everything a report says, order-free (Quay's test data lists packages in another order)."""
    return sorted(
        ((f.name, f.version, f.added_by, f.cve_ids, tuple(sorted(f.base_scores))),
         tuple(sorted((v.name, v.severity, v.namespace_name, v.link, v.fixed_by, v.description,
                       json.dumps(v.metadata, sort_keys=True), v.cvss_score, v.cvss_vector)
                      for v in f.vulnerabilities)))
        for f in report.features)


@pytest.mark.parametrize("clair_sample, quay_sample", [
    ("vulnerability_report.json", "securityinformation_withenrichments.json"),
    ("vulnerability_report_large.json", "securityinformation.json"),
])
def test_clair_report_converts_as_quay_converts_it(clair_sample, quay_sample):
    clair = compat_json("clair", clair_sample)
    quay = compat_json("quay", quay_sample)
    ours = report_from_clair(clair)
    theirs = parse_layer(quay.get("data", quay))
    assert quay.get("data", quay)["Layer"]["Name"] == clair["manifest_hash"]
    assert _comparable(ours) == _comparable(theirs)


def test_clair_sample_counts_and_distribution():
    report = report_from_clair(compat_json("clair", "vulnerability_report.json"))
    assert len(report.features) == 57
    assert len(report.vulnerable_features) == 7
    assert sum(len(f.vulnerabilities) for f in report.features) == 26
    assert report.namespace_name == "alpine:3.7"
    musl = next(f for f in report.features if f.name == "musl")
    assert musl.namespace_name == "alpine:3.7"
    (vuln,) = musl.vulnerabilities
    # normalized_severity is Unknown there; the CVSS enrichment (9.8) decides, as in Quay.
    assert (vuln.name, vuln.severity, vuln.cvss_score, vuln.fixed_by) == ("CVE-2019-14697", "Critical", 9.8,
                                                                          "1.1.18-r4")
    assert vuln.metadata["NVD"]["CVSSv3"] == {"Vectors": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                              "Score": 9.8}


def _tiny_report(vuln: dict, enrichment: list | None = None) -> dict:
    doc = {"manifest_hash": "sha256:" + "0" * 64,
           "packages": {"1": {"id": "1", "name": "openssl", "version": "1.0"}},
           "environments": {"1": [{"introduced_in": "sha256:" + "1" * 64, "distribution_id": "9"}]},
           "distributions": {"9": {"did": "debian", "version_id": "12", "name": "Debian"}},
           "vulnerabilities": {"7": {"id": "7", "name": "CVE-2024-0001", "updater": "debian", **vuln}},
           "package_vulnerabilities": {"1": ["7", "7"]}}
    if enrichment is not None:
        doc["enrichments"] = {"message/vnd.clair.map.vulnerability; enricher=clair.cvss schema=x": [
            {"7": enrichment}]}
    return doc


def test_clair_severity_url_encoded_fix_and_duplicates():
    report = report_from_clair(_tiny_report({"normalized_severity": "High", "fixed_in_version": "fixed=1.1&arch=x",
                                             "links": "https://a/CVE-2024-0001 https://b"}))
    (feature,) = report.features
    (vuln,) = feature.vulnerabilities  # listed twice for the package, reported once
    assert (vuln.severity, vuln.fixed_by, vuln.link) == ("High", "1.1", "https://a/CVE-2024-0001 https://b")
    assert feature.cve_ids == ("CVE-2024-0001",)
    assert feature.namespace_name == "debian:12"


def test_clair_highest_cvss_enrichment_wins_and_ten_is_critical():
    report = report_from_clair(_tiny_report({"normalized_severity": "Unknown", "fixed_in_version": "0"}, [
        {"baseScore": 7.0, "vectorString": "low"}, {"baseScore": 10.0, "vectorString": "high"}]))
    vuln = report.features[0].vulnerabilities[0]
    assert (vuln.severity, vuln.cvss_score, vuln.cvss_vector, vuln.fixed_by) == ("Critical", 10.0, "high", "")


@pytest.mark.parametrize("doc", [[], {"packages": []}, {"packages": {"1": 5}},
                                 {"packages": {"1": {}}, "package_vulnerabilities": {"1": ["9"]}}])
def test_clair_wrong_shapes_raise(doc):
    with pytest.raises(UnexpectedShape):
        report_from_clair(doc)


def test_clair_jwt_is_hs256_with_issuer_and_short_expiry():
    key = decode_psk("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    token = make_jwt(key, issuer="imvjob")
    claims = jwt.decode(token, key, algorithms=["HS256"], issuer="imvjob")
    assert 0 < claims["exp"] - time.time() <= 300
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize("psk", ["not base64!", ""])
def test_clair_bad_psk_is_a_configuration_error(psk):
    with pytest.raises(ConfigError):
        decode_psk(psk)


def test_index_body_gives_the_registry_credentials_only_to_registry_layers():
    layers = [LayerRef("sha256:" + "a" * 64, "https://reg/v2/x/blobs/sha256:" + "a" * 64, on_registry=True),
              LayerRef("sha256:" + "b" * 64, "https://cdn.example.com/layer", on_registry=False)]
    body = index_body("sha256:" + "c" * 64, layers, "Basic dTpw")
    assert body["hash"] == "sha256:" + "c" * 64
    assert body["layers"][0] == {"hash": "sha256:" + "a" * 64, "uri": "https://reg/v2/x/blobs/sha256:" + "a" * 64,
                                 "headers": {"Authorization": ["Basic dTpw"]}}
    assert body["layers"][1]["headers"] == {}


def test_harbor_sample():
    report = report_from_harbor(compat_json("harbor", "additions_vulnerabilities.json"))
    (feature,) = report.features
    assert (feature.name, feature.version) == ("bash", "5.0-6ubuntu1.1")
    assert feature.added_by == "sha256:4739cd2f4f486596c583c79f6033f1a9dee019389d512603609494678c8ccd53"
    (vuln,) = feature.vulnerabilities
    assert (vuln.name, vuln.severity, vuln.fixed_by) == ("CVE-2019-18276", "Low", "")
    assert (vuln.cvss_score, vuln.cvss_vector) == (3.2, "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N")
    assert vuln.link.split() == [
        "http://packetstormsecurity.com/files/155498/Bash-5.0-Patch-11-Privilege-Escalation.html",
        "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2019-18276",
        "https://github.com/bminor/bash/commit/951bdaad7a18cc0dc1036bba86b18b90874d39ff",
        "https://security.netapp.com/advisory/ntap-20200430-0003/",
        "https://www.youtube.com/watch?v=-wGtxJ8opa8"]
    assert feature.cve_ids == ("CVE-2019-18276",)


def test_harbor_groups_by_package_and_version_and_normalises_severities():
    key = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
    items = [{"id": "CVE-1", "package": "a", "version": "1", "severity": sev} for sev in
             ("Critical", "High", "Medium", "Low", "None", "Unknown")]
    items.append({"id": "CVE-2", "package": "a", "version": "2", "severity": "High", "fix_version": "3"})
    report = report_from_harbor({key: {"vulnerabilities": items}})
    assert [(f.name, f.version, len(f.vulnerabilities)) for f in report.features] == [("a", "1", 6), ("a", "2", 1)]
    assert [v.severity for v in report.features[0].vulnerabilities] == [
        "Critical", "High", "Medium", "Low", "Negligible", "Unknown"]
    assert report.features[1].vulnerabilities[0].fixed_by == "3"


def test_harbor_empty_answer_means_no_report_and_wrong_shapes_raise():
    assert report_from_harbor({}) is None
    with pytest.raises(ValueError):
        report_from_harbor({"text/plain": "x"})
    with pytest.raises(ValueError):
        report_from_harbor({"application/vnd.security.vulnerability.report; version=1.1": {"vulnerabilities": [1]}})


def test_harbor_path_encodes_a_nested_repository_twice():
    assert additions_path("proj/team/app", "sha256:" + "d" * 64) == (
        "/api/v2.0/projects/proj/repositories/team%252Fapp/artifacts/sha256:" + "d" * 64
        + "/additions/vulnerabilities")
