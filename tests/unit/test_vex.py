"""OpenVEX v0.2.0: statements read from documents of the spec's shape, and bad documents refused clearly."""
from __future__ import annotations

import pytest

from job.exceptions import Occurrence, decide
from job.vex import VexError, parse
from tests.vex_files import document, statement

DIGEST = "sha256:" + "b" * 64
OCI = f"pkg:oci/web@{DIGEST.replace(':', '%3A')}?repository_url=quay.io/shop/web"


def occ(**kw) -> Occurrence:
    base = dict(namespace="shop", kind="Deployment", name="web", repository="quay.io/shop/web", digest=DIGEST,
                package="openssl", version="3.0.1-1", vulnerability="CVE-2024-0001", cves=("CVE-2024-0001",),
                fixable=False)
    return Occurrence(**{**base, **kw})


def test_a_not_affected_statement_on_an_oci_purl_and_a_package_purl():
    doc = document(statement("CVE-2024-0001", OCI, packages=("pkg:rpm/redhat/openssl@3.0.1-1?arch=x86_64",),
                             impact="the TLS server is not built"))
    (rule,) = parse(doc, source="VEX v.json")
    assert (rule.image, rule.digests, rule.package, rule.version) == ("quay.io/shop/web", (DIGEST,), "openssl",
                                                                      "3.0.1-1")
    assert rule.accepts and rule.by == "Shop security <security@shop.example>"
    assert rule.reason == "not affected: vulnerable code not in execute path (the TLS server is not built)"
    assert rule.source == "VEX v.json, statement 1 (CVE-2024-0001)"
    assert decide([rule], occ()) == [rule]
    assert decide([rule], occ(digest="sha256:" + "c" * 64)) == []  # another build of the image
    assert decide([rule], occ(version="3.0.1-2")) == []  # another version of the package
    assert decide([rule], occ(package="zlib")) == []


def test_an_image_reference_by_repository_covers_every_digest_and_package():
    (rule,) = parse(document(statement("CVE-2024-0001", "quay.io/shop/web", status="fixed")), source="v")
    assert rule.accepts and rule.reason == "fixed" and rule.digests == ()
    assert decide([rule], occ(digest="sha256:" + "c" * 64, package="zlib")) == [rule]
    assert decide([rule], occ(repository="quay.io/shop/api")) == []
    (pinned,) = parse(document(statement("CVE-2024-0001", f"quay.io/shop/web@{DIGEST}")), source="v")
    assert pinned.digests == (DIGEST,)


def test_affected_and_under_investigation_accept_nothing_and_a_newer_one_undoes_an_older_not_affected():
    doc = document(statement("CVE-2024-0001", OCI, timestamp="2026-01-01T00:00:00Z"),
                   statement("CVE-2024-0001", OCI, status="affected", timestamp="2026-03-01T00:00:00Z"),
                   statement("CVE-2024-0002", OCI, status="under_investigation"))
    old, new, investigating = parse(doc, source="v")
    assert not new.accepts and not investigating.accepts
    assert [r.accepts for r in decide([old, new], occ())] == [False]


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update({"@context": "https://example.com/ns"}), "not an OpenVEX document"),
    (lambda d: d.pop("author"), "author is required"),
    (lambda d: d.update({"timestamp": "yesterday"}), "is not an RFC 3339 time"),
    (lambda d: d.update({"statements": []}), "statements must be a non-empty list"),
    (lambda d: d["statements"][0].update({"status": "maybe"}), "statement 1 (CVE-2024-0001): status must be one of"),
    (lambda d: d["statements"][0].pop("justification"), "not_affected needs a justification or an impact_statement"),
    (lambda d: d["statements"][0].update({"justification": "trust_me"}), "justification must be one of"),
    (lambda d: d["statements"][0].update({"vulnerability": {}}), "statement 1: vulnerability.name is required"),
    (lambda d: d["statements"][0].update({"products": []}), "products must be a non-empty list"),
    (lambda d: d["statements"][0]["products"][0].update({"@id": "pkg:npm/left-pad@1.0.0"}), "is not an image"),
    (lambda d: d["statements"][0]["products"][0].update({"@id": "pkg:oci/web@latest"}), "not a sha256 digest"),
    (lambda d: d["statements"][0]["products"][0].update({"@id": "not an image"}), "neither an image reference"),
    (lambda d: d["statements"][0]["products"][0].update({"subcomponents": [{"@id": "pkg:"}]}), "not a valid purl"),
])
def test_a_document_that_breaks_the_spec_is_refused_saying_where(change, words):
    doc = document(statement("CVE-2024-0001", OCI, packages=("pkg:deb/debian/openssl@3.0.1",)))
    change(doc)
    with pytest.raises(VexError) as err:
        parse(doc, source="VEX v.json")
    assert str(err.value).startswith("VEX v.json") and words in str(err.value)


def test_affected_needs_an_action_statement():
    doc = document(statement("CVE-2024-0001", OCI, status="affected"))
    del doc["statements"][0]["action_statement"]
    with pytest.raises(VexError, match="affected needs an action_statement"):
        parse(doc, source="v")
