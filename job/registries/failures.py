"""Why a manifest could not be scanned, as exceptions that carry their final ScanState.

Backends raise these from deep inside a request; the per-manifest wrapper turns them into a
ScanResult, so no per-manifest problem ever escapes scan_manifests.
"""
from __future__ import annotations

import re

from job.model import ScanState

#: Longest excerpt of a registry's answer put into a detail line.
EXCERPT_CHARS = 120

_TAGS = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]")


class ScanFailure(Exception):
    """The manifest ends in `state`, with `detail` in plain words."""

    state = ScanState.ERROR

    def __init__(self, detail: str, *, state: ScanState | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if state is not None:
            self.state = state


class Unreachable(ScanFailure):
    state = ScanState.UNREACHABLE


class Unauthorized(ScanFailure):
    state = ScanState.UNAUTHORIZED


class BadResponse(ScanFailure):
    """Garbage: an HTML page, invalid JSON, a document of the wrong shape, a body too large."""

    state = ScanState.ERROR


def excerpt(body: bytes | bytearray | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, printable excerpt of untrusted text (HTML tags dropped)."""
    # Only the start is looked at: an answer can be tens of MiB.
    text = body[: limit * 20]
    text = bytes(text).decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text
    text = _TAGS.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    text = _UNPRINTABLE.sub("?", text)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or "(empty)"
