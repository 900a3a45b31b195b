"""Pages per owner on large clusters: an index page and one page per owner group.

Pure but for `render_pages`, which returns each page's path and text for the writer. A cluster
whose single page would cut a table to its first rows gets, instead, report.html as an index
(summary, owners, the most urgent actions, coverage) and owners/<name>.html for each group of
namespaces sharing the same owners (each namespace nobody owns on its own page), every page
self-contained, linked relatively, and listing every row of its scope.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

from job.report.groups import vulnerability_groups
from job.report.text import file_name, safe_link
from job.report.view import Counts, ReportContext

FOLDER = "owners"


@dataclass(frozen=True, slots=True)
class OwnerPage:
    owners: tuple[str, ...]  # () for a namespace nobody owns
    namespaces: tuple[str, ...]
    counts: Counts
    affected_workloads: int
    unscanned: int

    @property
    def path(self) -> str:
        return page_path(self.owners, self.namespaces)

    @property
    def title(self) -> str:
        return ", ".join(self.owners) if self.owners else f"namespace {self.namespaces[0]} (no owner set)"


def page_path(owners: tuple[str, ...], namespaces: tuple[str, ...]) -> str:
    """owners/<readable part>-<hash>.html: the same owners always get the same file, and two
    groups never one file, whatever their addresses or namespace names hold."""
    key = "\n".join(owners) if owners else "ns\n" + namespaces[0]
    digest = hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=5).hexdigest()
    readable = file_name(owners[0] if owners else "ns-" + namespaces[0], limit=48)
    return f"{FOLDER}/{readable}-{digest}.html"


def is_large(ctx: ReportContext, limits: dict[str, int]) -> bool:
    """Whether the single page would show only the first rows of a table."""
    changes = ctx.changes
    return (len(ctx.affected_workloads) > limits["workloads"]
            or len(ctx.vulnerable_images) > limits["images"]
            or vulnerability_groups(ctx.images, 0)[1] > limits["groups"]
            or len(ctx.overdue) > limits["overdue"]
            or changes.new_counts.total > limits["changes"] or len(changes.resolved) > limits["changes"]
            or len(ctx.accepted.rows) > limits["accepted"])


def owner_pages(ctx: ReportContext) -> list[OwnerPage]:
    """One page per owner group, and per namespace nobody owns; the most affected first."""
    pages = []
    for g in ctx.owner_groups:
        if g.owners:
            pages.append(OwnerPage(g.owners, tuple(n.name for n in g.namespaces), g.counts, g.affected_workloads,
                                   sum(n.unscanned + n.unresolved for n in g.namespaces)))
        else:
            pages += [OwnerPage((), (n.name,), n.counts, len(n.affected_workloads), n.unscanned + n.unresolved)
                      for n in g.namespaces]
    pages.sort(key=lambda p: (-p.affected_workloads, -p.counts.total, p.path))
    return pages


def restricted(ctx: ReportContext, pages: list[OwnerPage]) -> Iterator[tuple[OwnerPage, ReportContext]]:
    """Each page with its share of the report, built one at a time (only one is held at once)."""
    for page in pages:
        yield page, ctx.restrict(page.namespaces)


def report_links(view: ReportContext, report_url: str, *, split: bool) -> list[tuple[str, str]]:
    """(label, URL) of the pages a mail about `view` links to, where `report_url` (the served
    report.html, or its folder) is set: the whole report, and on a large cluster the recipient's
    own pages. http(s) only."""
    url = safe_link(report_url)
    if not url:
        return []
    folder, _, last = url.partition("?")[0].rpartition("/")
    if not last.endswith(".html"):  # a folder: its report.html
        folder, url = url.rstrip("/"), url.rstrip("/") + "/report.html"
    links = [("The whole report", url)]
    if split and view.only is not None:
        for g in view.owner_groups:
            if g.owners:
                links.append((f"Your page: {', '.join(g.owners)}",
                              f"{folder}/{page_path(g.owners, tuple(n.name for n in g.namespaces))}"))
            else:
                links += [(f"Namespace {n.name}", f"{folder}/{page_path((), (n.name,))}") for n in g.namespaces]
    return links
