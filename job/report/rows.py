"""Pure: the page's longest tables (every vulnerability; each image's first vulnerabilities) as HTML rows.

An owner's page of a large cluster lists thousands of these rows, and a large cluster has hundreds
of owner pages: written here as plain strings, with the pieces repeated across rows and pages (an
advisory's links, a severity badge) made once, they cost a fraction of a template loop. Every value
is escaped; links are http(s) only (job.report.text.safe_links). The result is what the templates
insert (a jinja2 Markup, as a safe string, is made by job.report.templating).
"""
from __future__ import annotations

import functools
from html import escape
from typing import Iterable

from job.model import SEVERITY_RANK
from job.report.formats import link_host, plural
from job.report.text import one_line, safe_links
from job.report.groups import VulnGroup
from job.report.view import Entry


@functools.lru_cache(maxsize=64)
def sev(name: str) -> str:
    """A severity badge; its colours are the stylesheet's .sev.s<rank> (job.report.palette)."""
    if not name:
        return '<span class="none">none</span>'
    return f'<span class="sev s{SEVERITY_RANK.get(name, 0)}">{escape(name)}</span>'


def sev_rank(name: str) -> int:
    return SEVERITY_RANK.get(name, -1)


@functools.lru_cache(maxsize=8192)
def advisory(text: str) -> str:
    """The advisory links of a registry's Link field, by host; text that holds none, shortened."""
    urls = safe_links(text)
    if urls:
        return " · ".join(f'<a href="{escape(u)}">{escape(link_host(u))}</a>' for u in urls)
    if not text:
        return ""
    flat = one_line(text)
    return f'<span class="muted small">{escape(flat if len(flat) <= 85 else flat[:79] + "…")}</span>'


def _cvss(score: float | None) -> str:
    return "" if score is None else f"{score:.1f}"


def _first(values: tuple[str, ...], n: int, more: str) -> str:
    return escape(", ".join(values[:n])) + (more if len(values) > n else "")


def vulnerability_rows(groups: Iterable[VulnGroup]) -> str:
    """The Vulnerabilities table's body rows."""
    out = []
    for g in groups:
        images = "".join(f'<div class="mono small">{escape(i.image)}</div>' for i in g.images[:3])
        if len(g.images) > 3:
            images += f'<div class="muted small">and {plural(len(g.images) - 3, "more image")}</div>'
        ns = _first(g.namespaces, 4, f" +{len(g.namespaces) - 4}")
        out.append(
            f'<tr><td data-sort="{sev_rank(g.severity)}">{sev(g.severity)}</td>'
            f'<td><b>{escape(g.vulnerability)}</b><br>{advisory(g.link)}</td><td>{escape(g.package)}</td>'
            f'<td class="mono">{_first(g.installed, 3, " …")}</td>'
            f'<td class="mono">{escape(", ".join(g.fixed_by[:3])) or "–"}</td>'
            f'<td class="num">{_cvss(g.cvss)}</td>'
            f'<td data-sort="{len(g.images)}">{images}<div class="muted small">{ns}</div></td>'
            f'<td class="num">{g.workloads:,}</td></tr>\n')
    return "".join(out)


def entry_rows(entries: Iterable[Entry]) -> str:
    """An image's vulnerability lines (the table under each image)."""
    return "".join(
        f'<tr><td>{sev(v.severity)}</td><td>{escape(v.name)}</td><td>{escape(f.name)}</td>'
        f'<td class="mono">{escape(f.version)}</td><td class="mono">{escape(v.fixed_by) or "–"}</td>'
        f'<td class="num">{_cvss(v.cvss_score)}</td><td>{advisory(v.link)}</td></tr>\n'
        for f, v in entries)
