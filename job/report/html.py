"""The HTML report: one self-contained page rendered with Jinja2 from templates/
(the environment, shared with the mail, is job.report.templating's)."""
from __future__ import annotations

from job.report import charts
from job.report.groups import vulnerability_groups
from job.report.templating import environment
from job.report.view import ReportContext


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


#: An owner's page lists every row of its scope in every table; what stays capped is detail inside a row
#: (an image's first vulnerabilities, whose every line is in the page's vulnerability table).
EVERY_ROW = {**LIMITS, **{k: 10**12 for k in ("workloads", "changes", "images", "groups", "overdue", "accepted")}}
#: The index of a large cluster: the most urgent rows; the owners' pages and the workbook have the rest.
INDEX = {**LIMITS, "workloads": 100, "overdue": 100}


def render_html(ctx: ReportContext, *, limits: dict[str, int] = LIMITS, pages: list | None = None,
                home: str = "", title: str = "") -> str:
    """One page. pages: render the index of these owner pages (job.report.pages); home: the
    relative link back to it from an owner's page, titled `title`."""
    # The index names no vulnerability (the owners' pages do): only how many there are.
    groups, group_count = vulnerability_groups(ctx.images, 0 if pages is not None else limits["groups"])
    return environment().get_template("report.html").render(
        ctx=ctx, limits=limits, groups=groups, group_count=group_count, pages=pages, home=home, title=title,
        stylesheet=True,  # severity colours by class (templates/_macros.html)
        rest_prefix="the owners' pages and " if pages is not None else "",
        new_changes=ctx.changes.new(limits["changes"]),
        chart_severity=charts.severity_bars(ctx.totals.counts),
        chart_images=charts.top_images(ctx.images),
        chart_trend=charts.trend(ctx.trend),
    )
