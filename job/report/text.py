"""Untrusted text from registries and the cluster, made safe to show.

Registry and cluster text keeps its characters (the ImageManifestVuln keeps it verbatim); the
renderers only decide what may become a link, a header or a file name.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@-]+")


def one_line(text: str, *, limit: int = 0) -> str:
    """Control characters (CR, LF, tab, NUL ...) become spaces; runs of spaces collapse."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    if limit and len(flat) > limit:
        return flat[: limit - 1] + "…"
    return flat


@functools.lru_cache(maxsize=65536)
def safe_links(text: str) -> tuple[str, ...]:
    """The http(s) URLs among the space-separated words of a registry's Link field.

    Anything else (javascript:, data:, relative paths, URLs with control characters or
    without a host) is dropped: it is shown as text, never as a link.
    """
    links = []
    for word in text.split():
        if _CONTROL.search(word) or '"' in word or "<" in word or ">" in word:
            continue
        try:
            parts = urlsplit(word)
        except ValueError:
            continue
        if parts.scheme.lower() in ("http", "https") and parts.netloc and word not in links:
            links.append(word)
    return tuple(links)


def safe_link(text: str) -> str:
    """One http(s) URL, or '' when text is not one."""
    links = safe_links(text.strip())
    return links[0] if len(links) == 1 and links[0] == text.strip() else ""


def file_name(text: str, *, limit: int = 80) -> str:
    """A name built from cluster or registry text that is safe as one path component."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE_NAME.sub("_", ascii_text).strip("._-")[:limit]
    return name or "unnamed"
