"""Who to warn: mail addresses read from namespace annotations or labels, and from settings.

An address becomes a recipient only when it is a plain, strict `local@domain`: anything else is
reported as a problem and never reaches a mail header.
"""
from __future__ import annotations

import re

from job.model import Namespace
from job.report.text import one_line

# Dot-atom local part (RFC 5322 without quoted strings) and a DNS name ("localhost" included).
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR = rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*"
# Either a bare address or `Display Name <address>`.
_ITEM = re.compile(rf"[^<>\"]*<\s*({_ADDR})\s*>|({_ADDR})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_addresses(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split a comma-separated list into (valid addresses, rejected items).

    `Name <a@b.example>` is accepted as `a@b.example` (the display name is dropped: it is
    untrusted text). Domains are lower-cased; duplicates are removed, order kept.
    """
    valid: list[str] = []
    rejected: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        address = _address(item)
        if address is None:
            rejected.append(one_line(item, limit=120))
        elif address not in valid:
            valid.append(address)
    return tuple(valid), tuple(rejected)


def _address(item: str) -> str | None:
    if _CONTROL.search(item) or len(item) > 320:
        return None
    match = _ITEM.fullmatch(item)
    if match is None:
        return None
    address = match.group(1) or match.group(2)
    if len(address) > 254:
        return None
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def namespace_owners(namespace: Namespace | None, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Owners of a namespace from its annotation `key`, else its label `key`: (valid, rejected)."""
    if namespace is None or not key:
        return (), ()
    text = namespace.annotations.get(key)
    if text is None:
        text = namespace.labels.get(key, "")
    return parse_addresses(text)
