"""OpenVEX v0.2.0 documents as exception entries (job.exceptions.Rule). Pure: a decoded JSON object in.

A statement names a vulnerability and products: an image by digest or repository (an OCI purl
`pkg:oci/name@sha256:...?repository_url=host/path`, or `host/path[@sha256:...]`), with, where
given, the packages inside it as subcomponent purls. `not_affected` (with its justification) and
`fixed` accept the findings they match; `affected` and `under_investigation` accept nothing and,
being newer, undo an older statement. Spec: https://github.com/openvex/spec (v0.2.0).
"""
from __future__ import annotations

import re
from typing import Any

from packageurl import PackageURL

from job.exceptions import NO_END, Rule
from job.triage import day_of

CONTEXT = "https://openvex.dev/ns"
STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
JUSTIFICATIONS = ("component_not_present", "vulnerable_code_not_present", "vulnerable_code_not_in_execute_path",
                  "vulnerable_code_cannot_be_controlled_by_adversary", "inline_mitigations_already_exist")
MAX_STATEMENTS = 20000
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REF = re.compile(r"([a-z0-9.\-]+(?::\d+)?/[a-z0-9._/\-]+)(?::[\w.\-]+)?(?:@(sha256:[0-9a-f]{64}))?")


class VexError(ValueError):
    """A document that is not OpenVEX, or a statement that breaks the spec; the message says where."""


def parse(doc: Any, *, source: str) -> list[Rule]:
    """Every statement of one document, validated; raises VexError on the first problem."""
    if not isinstance(doc, dict):
        raise VexError(f"{source}: not a JSON object")
    context = doc.get("@context")
    if not isinstance(context, str) or not context.startswith(CONTEXT):
        raise VexError(f"{source}: not an OpenVEX document (@context is not {CONTEXT}/v0.2.0)")
    for key in ("@id", "author", "timestamp"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise VexError(f"{source}: {key} is required")
    if not day_of(doc["timestamp"]):
        raise VexError(f"{source}: timestamp {doc['timestamp'][:40]!r} is not an RFC 3339 time")
    statements = doc.get("statements")
    if not isinstance(statements, list) or not statements:
        raise VexError(f"{source}: statements must be a non-empty list")
    if len(statements) > MAX_STATEMENTS:
        raise VexError(f"{source}: more than {MAX_STATEMENTS} statements")
    author = _one_line(doc["author"])
    rules: list[Rule] = []
    for i, st in enumerate(statements, 1):
        rules += _statement(st, where=f"{source}, statement {i}", author=author, timestamp=doc["timestamp"])
    return rules


def _statement(st: Any, *, where: str, author: str, timestamp: str) -> list[Rule]:
    if not isinstance(st, dict):
        raise VexError(f"{where}: not an object")
    vuln = st.get("vulnerability")
    name = vuln.get("name") if isinstance(vuln, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise VexError(f"{where}: vulnerability.name is required")
    where = f"{where} ({name.strip()[:80]})"
    status = st.get("status")
    if status not in STATUSES:
        raise VexError(f"{where}: status must be one of {', '.join(STATUSES)}")
    justification = st.get("justification")
    impact = st.get("impact_statement")
    if status == "not_affected":
        if justification is None and not isinstance(impact, str):
            raise VexError(f"{where}: not_affected needs a justification or an impact_statement")
        if justification is not None and justification not in JUSTIFICATIONS:
            raise VexError(f"{where}: justification must be one of {', '.join(JUSTIFICATIONS)}")
    if status == "affected" and not isinstance(st.get("action_statement"), str):
        raise VexError(f"{where}: affected needs an action_statement")
    products = st.get("products")
    if not isinstance(products, list) or not products:
        raise VexError(f"{where}: products must be a non-empty list")
    when = st.get("timestamp") if isinstance(st.get("timestamp"), str) else timestamp
    reason = _reason(status, justification, impact)
    rules = []
    for product in products:
        image, digest = _product(product, where=where)
        packages = [_package(s, where=where) for s in (product.get("subcomponents") or [])] or [("", "")]
        for package, version in packages:
            rules.append(Rule(image=image, package=package, version=version, vulnerability=name.strip(),
                              reason=reason, by=author, until=NO_END, source=where, origin="vex", status=status,
                              digests=(digest,) if digest else (), timestamp=when))
    return rules


def _reason(status: str, justification: Any, impact: Any) -> str:
    words = {"not_affected": "not affected", "fixed": "fixed", "affected": "affected",
             "under_investigation": "under investigation"}[status]
    if isinstance(justification, str):
        words += ": " + justification.replace("_", " ")
    if isinstance(impact, str) and impact.strip():
        words += f" ({_one_line(impact)})"
    return words[:500]


def _product(product: Any, *, where: str) -> tuple[str, str]:
    """(repository, digest) of a product: an image. One of them may be ''."""
    if not isinstance(product, dict):
        raise VexError(f"{where}: a product must be an object")
    ident = product.get("@id")
    ids = product.get("identifiers")
    if not isinstance(ident, str) and isinstance(ids, dict):
        ident = ids.get("purl")
    if not isinstance(ident, str) or not ident.strip():
        raise VexError(f"{where}: a product needs an @id (an image reference or a pkg:oci purl)")
    ident = ident.strip()
    if ident.startswith("pkg:"):
        purl = _purl(ident, where=where)
        if purl.type != "oci":
            raise VexError(f"{where}: product {ident[:80]!r} is not an image (pkg:oci)")
        digest = purl.version or ""
        if digest and not _DIGEST.fullmatch(digest):
            raise VexError(f"{where}: product {ident[:80]!r}: its version is not a sha256 digest")
        repo = (purl.qualifiers or {}).get("repository_url", "") if isinstance(purl.qualifiers, dict) else ""
        return (repo.lower() or f"*/{purl.name.lower()}"), digest
    m = _REF.fullmatch(ident.lower())
    if m is None:
        raise VexError(f"{where}: product {ident[:80]!r} is neither an image reference nor a purl")
    return m.group(1), m.group(2) or ""


def _package(sub: Any, *, where: str) -> tuple[str, str]:
    ident = sub.get("@id") if isinstance(sub, dict) else None
    if not isinstance(ident, str) and isinstance(sub, dict) and isinstance(sub.get("identifiers"), dict):
        ident = sub["identifiers"].get("purl")
    if not isinstance(ident, str) or not ident.startswith("pkg:"):
        raise VexError(f"{where}: a subcomponent needs a package purl as @id")
    purl = _purl(ident, where=where)
    return purl.name, purl.version or ""


def _purl(text: str, *, where: str) -> PackageURL:
    try:
        return PackageURL.from_string(text[:1000])
    except ValueError as exc:
        raise VexError(f"{where}: {text[:80]!r} is not a valid purl ({exc})") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
