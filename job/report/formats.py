"""Pure: the short forms in which the page, the mail and the summary write times, hosts, digests
and counts (also the Jinja2 filters of job.report.templating)."""
from __future__ import annotations

from urllib.parse import urlsplit


def when(taken_at: str) -> str:
    """RFC 3339 UTC → '2026-05-01 10:00 UTC'."""
    if len(taken_at) >= 16 and taken_at[10] == "T":
        return f"{taken_at[:10]} {taken_at[11:16]} UTC"
    return taken_at


def link_host(url: str) -> str:
    """The host of a link, as its short label ('access.redhat.com')."""
    return urlsplit(url).netloc or url


def short_digest(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


def plural(n: int, word: str, many: str = "") -> str:
    """3 → '3 images', 1 → '1 image'; `many` for an irregular plural."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def signed(n: int) -> str:
    """+3, −5 (a minus sign, not a hyphen), 0."""
    return f"+{n:,}" if n > 0 else (f"\u2212{-n:,}" if n < 0 else "0")
