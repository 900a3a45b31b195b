"""The HTML report: one self-contained page rendered with Jinja2 from templates/.

Also home of the Jinja2 environment that the mail templates (templates/mail/) share.
"""
from __future__ import annotations

import functools
from urllib.parse import urlsplit
from pathlib import Path

import jinja2

from job import __version__
from job.model import SEVERITIES
from job.report import charts
from job.report.context import SEVERITIES_DESC, ReportContext, signed
from job.report.palette import SEVERITY_COLOURS, background, foreground
from job.report.text import one_line, safe_links
from job.triage import iso_day


def _templates() -> Path:
    """templates/ at the top of a checkout; in an installed package, its copy `imvjob_templates`."""
    source = Path(__file__).resolve().parents[2] / "templates"
    if (source / "base.html").is_file():
        return source
    import importlib.util

    spec = importlib.util.find_spec("imvjob_templates")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("imvjob is installed without its templates (imvjob_templates)")
    return Path(list(spec.submodule_search_locations)[0])


TEMPLATES = _templates()

#: How much detail the page shows at most; the workbook has every row. Coverage is never capped.
LIMITS = {
    "workloads": 300,  # "What to do" rows
    "changes": 300,  # new and resolved rows, each
    "images": 300,  # images with their vulnerability details
    "image_entries": 15,  # vulnerability lines under each image
    "groups": 300,  # rows of the vulnerability table
    "namespace_workloads": 12,  # affected workloads named per namespace
    "overdue": 100,  # rows of the Overdue section
    "top_findings": 3,  # findings named per "What to do" row
    "accepted": 300,  # rows of the Accepted section
}


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "svg"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=lambda n: f"{n:,}",
        link_host=link_host,
        when=when,
        links=safe_links,
        one_line=one_line,
        short_digest=short_digest,
        plural=plural,
        sev_bg=background,
        sev_fg=foreground,
        day=iso_day,
        signed=signed,
    )
    env.globals.update(SEVERITIES=SEVERITIES, SEVERITIES_DESC=SEVERITIES_DESC, COLOURS=SEVERITY_COLOURS,
                       version=__version__, plural=plural)
    return env


#: An owner's page lists every row of its scope but for the vulnerability table (image × package ×
#: vulnerability, tens of thousands of rows on a large cluster: the workbook's sheet has them all).
EVERY_ROW = {**LIMITS, **{k: 10**12 for k in ("workloads", "changes", "images", "overdue", "accepted")}}
#: The index of a large cluster: the most urgent rows; the owners' pages and the workbook have the rest.
INDEX = {**LIMITS, "workloads": 100, "overdue": 100}


def render_html(ctx: ReportContext, *, limits: dict[str, int] = LIMITS, pages: list | None = None,
                home: str = "", title: str = "") -> str:
    """One page. pages: render the index of these owner pages (job.report.pages); home: the
    relative link back to it from an owner's page, titled `title`."""
    # The index names no vulnerability (the owners' pages do): only how many there are.
    groups, group_count = ctx.vulnerability_groups(0 if pages is not None else limits["groups"])
    return environment().get_template("report.html").render(
        ctx=ctx, limits=limits, groups=groups, group_count=group_count, pages=pages, home=home, title=title,
        rest_prefix="the owners' pages and " if pages is not None else "",
        new_changes=ctx.changes.new(limits["changes"]),
        chart_severity=charts.severity_bars(ctx.totals.counts),
        chart_images=charts.top_images(ctx.images),
        chart_trend=charts.trend(ctx.trend),
    )


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
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
