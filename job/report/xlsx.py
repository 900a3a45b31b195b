"""The workbook: one sheet per view, every row, streamed (job.report.xlsx_package writes the file).

No cell is ever a formula: registry text that a spreadsheet could read as one (a leading =, +,
-, @, tab or CR, or an error literal such as #N/A) is stored as a text cell with Excel's
"quote prefix", so it shows as typed and stays text when edited.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from job.model import SEVERITIES
from job.report.fixes import Fix
from job.report.palette import background, foreground
from job.report.text import safe_link, safe_links
from job.report.xlsx_accepted import ACCEPTED_COLUMNS, accepted_rows
from job.report.xlsx_package import Package, Style, Styled
from job.report.xlsx_triage import (OVERDUE_COLUMNS, day_date, findings_text, overdue_rows, triage_rows,
                                    vulnerability_signals)
from job.report.view import SEVERITIES_DESC, Counts, ReportContext, WorkloadItem

#: Excel keeps at most this many hyperlinks per sheet; rows past it show the URL as text.
MAX_LINKS_PER_SHEET = 65_000
#: Excel's longest hyperlink address; a longer one (a registry may send any) is shown as text.
MAX_LINK_CHARS = 2_079
#: Data rows per sheet (Excel's limit is 1,048,576 rows with the header); more go to "Name (2)" ...
MAX_ROWS_PER_SHEET = 1_048_575
_LIST_LIMIT = 30  # names listed in one cell before "(+N more)"

_HEADER = Style(bold=True, color="FFFFFFFF", fill="FF1D2430")
_LINK = Style(color="FF1B5FA6", underline=True)
_BOLD = Style(bold=True)
_TITLE = Style(bold=True, size=14)
_DATE = Style(number_format="yyyy-mm-dd hh:mm")
_SEVERITY = {s: Style(bold=True, color="FF" + foreground(s)[1:].upper(), fill="FF" + background(s)[1:].upper())
             for s in SEVERITIES}


class _Sheet:
    """One view: header, widths, frozen first row, autofilter; continues on a new sheet when full."""

    def __init__(self, book: Package, title: str, columns: list[tuple[str, int]]) -> None:
        self.book, self.title, self.columns = book, title, columns
        ids = book.styles.id
        self._link, self._date, self._bold, self._title = ids(_LINK), ids(_DATE), ids(_BOLD), ids(_TITLE)
        self._severity = {s: ids(style) for s, style in _SEVERITY.items()}
        self.part = 0
        self._open()

    def _open(self) -> None:
        self.part += 1
        self.ws = self.book.sheet(self.title if self.part == 1 else f"{self.title} ({self.part})",
                                  [width for _name, width in self.columns], links=MAX_LINKS_PER_SHEET)
        self.rows = 0
        header = self.book.styles.id(_HEADER)
        self.ws.row([Styled(name, header) for name, _w in self.columns])

    def severity(self, name: str) -> Any:
        style = self._severity.get(name)
        return Styled(name, style) if style is not None else (name or None)

    def link(self, url: str, label: str = "") -> Any:
        """A hyperlink cell for an http(s) URL (plain text once the sheet's hyperlinks run out, or for a
        URL longer than Excel takes)."""
        url = safe_link(url)
        if not url:
            return label or None
        if len(url) > MAX_LINK_CHARS:
            return label or url
        return Styled(label or url, self._link, url)

    def date(self, value: dt.datetime | None) -> Any:
        return None if value is None else Styled(value, self._date)

    def bold(self, value: Any) -> Styled:
        return Styled(value, self._bold)

    def title_cell(self, value: str) -> Styled:
        return Styled(value, self._title)

    def append(self, values: Iterable[Any]) -> None:
        # A new sheet when this one has Excel's most rows, or as much XML as a zip entry may hold.
        if self.rows >= MAX_ROWS_PER_SHEET or (self.rows and self.ws.full()):
            self.ws.close()
            self._open()
        self.rows += 1
        self.ws.row(list(values))

    def close(self) -> None:
        self.ws.close()


# --- the sheets -----------------------------------------------------------------------------------


def write_xlsx(ctx: ReportContext, *, dest: Path | BinaryIO) -> None:
    """I/O: the workbook into dest; its parts carry the time the pods were listed, so that the same
    run gives the same bytes."""
    book = Package(str(dest) if isinstance(dest, Path) else dest, when=_taken_at(ctx.taken_at),
                   title=f"Image vulnerability report: {ctx.cluster}")
    for sheet in (_summary, _workloads, _overdue, _accepted, _images, _vulnerabilities, _changes, _coverage):
        sheet(book, ctx)
    book.close()


def xlsx_bytes(ctx: ReportContext) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(ctx, dest=buffer)
    return buffer.getvalue()


def _taken_at(value: str) -> dt.datetime | None:
    """RFC 3339 → naive UTC datetime (Excel has no time zones); None when unparsable."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def _severity_counts(c: Counts) -> list[int]:
    return [c.of(s) for s in SEVERITIES_DESC]


def _names(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f" (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


def _fix_text(fixes: tuple[Fix, ...]) -> str:
    return "; ".join(f"{f.package} {f.installed} → {f.to}" + (f", fixes {f.vulnerabilities}" if f.target else "")
                     for f in fixes)


def _summary(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Summary", [("Item", 34), ("Value", 70), ("New", 12), ("Resolved", 12),
                                     ("Vulnerable images", 18), ("Change", 12)])
    t, ch = ctx.totals, ctx.changes
    add = sheet.append
    add([sheet.title_cell("Image vulnerability report")])
    add(["Cluster", ctx.cluster])
    add(["Pods listed at (UTC)", sheet.date(_taken_at(ctx.taken_at)) or ctx.taken_at])
    add(["Headline", ctx.headline])
    add(["Namespaces", ", ".join(ctx.only) if ctx.only is not None else
         (", ".join(ctx.scope) if ctx.scope is not None else "all")])
    add(["Source", ctx.source])
    add(["Previous run (UTC)", (sheet.date(_taken_at(ch.previous_taken_at)) or ch.previous_taken_at)
         if ch.has_previous else "none: new and resolved start with the next run"])
    add([])
    add([sheet.bold("Severity"), sheet.bold("Vulnerabilities"), sheet.bold("New findings"),
         sheet.bold("Resolved findings"), sheet.bold("Vulnerable images"), sheet.bold("Vulnerabilities change")])
    for s in SEVERITIES_DESC:
        rank = SEVERITIES.index(s)
        add([sheet.severity(s), t.counts.of(s), ch.new_counts.of(s) if ch.has_previous else None,
             ch.resolved_counts.of(s) if ch.has_previous else None, t.images_by_highest[rank],
             ch.delta[rank] if ch.has_previous else None])
    add([sheet.bold("All"), t.counts.total, ch.new_counts.total if ch.has_previous else None,
         ch.resolved_counts.total if ch.has_previous else None, t.vulnerable, sum(ch.delta) if ch.has_previous else None])
    add(["Fixable (a fixed-by version exists)", t.counts.fixable])
    add(["Without a fix", t.counts.total - t.counts.fixable])
    add([])
    add(["Images running", t.images])
    add(["Images scanned", t.scanned])
    add(["Images not scanned", t.unscanned])
    for state, n in t.unscanned_by_state:
        add([f"  not scanned: {state}", n])
    add(["Containers with an unknown image", t.unresolved])
    add(["Other problems (see Coverage)", t.problems])
    add(["Pods", t.pods])
    add(["Namespaces with pods", t.namespaces])
    add(["Workloads", t.workloads])
    add(["Workloads with vulnerabilities", t.workloads_affected])
    add(["ImageManifestVulns (namespace × vulnerable image)", t.imv_objects])
    if ch.unchecked:
        add(["Earlier findings not rechecked (image not scanned now)", ch.unchecked])
    if ctx.apply is not None:
        a = ctx.apply
        add([])
        add([sheet.bold("ImageManifestVulns" + (" (check mode: nothing changed)" if a.dry_run else ""))])
        for label, n in (("created", a.created), ("updated", a.updated), ("deleted", a.deleted),
                         ("unchanged", a.unchanged), ("kept (scan failed)", a.kept), ("not ours", a.unmanaged),
                         ("failed", a.failed)):
            add([label, n])
        add(["written to", a.target])
    triage_rows(sheet, ctx)
    add([])
    add(["Note", f"Vulnerabilities are the entries of the scanned images (as in ImageManifestVulns); each image is "
                 f"counted once in the cluster totals. Findings are workload × vulnerability (new, resolved, "
                 f"overdue). Hyperlinks stop after {MAX_LINKS_PER_SHEET:,} per sheet (Excel's limit); "
                 f"later rows, and URLs over {MAX_LINK_CHARS:,} characters, show the URL as text."])
    sheet.close()


def _workloads(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Workloads", [
        ("Namespace", 22), ("Kind", 13), ("Workload", 30), ("Owners", 30), ("Highest severity", 15),
        *[(s, 10) for s in SEVERITIES_DESC], ("Total", 9), ("Fixable", 9), ("New", 8),
        ("Images not scanned", 12), ("Containers unresolved", 12), ("Pods", 8), ("Update to (fixed-by)", 70),
        ("Images", 70), ("Fix first", 60), ("Exploited (KEV)", 10), ("Overdue", 9), ("Earliest due", 12),
        ("Oldest open (days)", 10), ("In the base image", 10), ("Rebuild (image as written: containers)", 60)])
    for w in ctx.workloads:  # ranked: exploited first, then severity, fixable, EPSS
        tri = w.triage
        sheet.append([
            w.namespace, w.workload.kind, w.workload.name, ", ".join(w.owners),
            sheet.severity(w.counts.highest), *_severity_counts(w.counts), w.counts.total, w.counts.fixable,
            len(w.new_keys), len(w.unscanned), w.unresolved, len(w.pods), _fix_text(w.fixes),
            _names(str(i.ref) for i in w.images), findings_text(tri.top) if tri else "",
            tri.kev if tri else 0, len(tri.overdue) if tri else 0, sheet.date(day_date(tri.first_due)) if tri else None,
            tri.oldest if tri else None, _base(w.base_hint), _rebuild(w)])
    sheet.close()


def _overdue(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Overdue", OVERDUE_COLUMNS)
    overdue_rows(sheet, ctx)
    sheet.close()


def _rebuild(w: WorkloadItem) -> str:
    parts = []
    for i in w.images:
        if i.counts.total:
            texts, names = w.rebuild(i)
            parts.append(", ".join(texts) + (f": {', '.join(names)}" if names else ""))
    return _names(parts)


def _base(hint: tuple[int, int]) -> str | None:
    base, of = hint
    return f"{base} of {of}" if of else None


def _images(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Images", [
        ("Image", 45), ("Digest", 24), ("State", 14), ("Why not scanned", 30), ("Highest severity", 15),
        *[(s, 10) for s in SEVERITIES_DESC], ("Total", 9), ("Fixable", 9), ("Namespaces", 30),
        ("Workloads", 50), ("Pods", 8), ("Pod names", 50), ("Registry page", 40), ("Scanned by", 10)])
    for i in ctx.images:
        sheet.append([
            i.image, i.digest, i.state, i.detail, sheet.severity(i.counts.highest),
            *_severity_counts(i.counts), i.counts.total, i.counts.fixable, _names(i.namespaces),
            _names(f"{ns}/{wl}" for ns, wl in i.workloads), len(i.pods), _names(i.pods), sheet.link(i.page_url),
            i.backend])
    sheet.close()


def _vulnerabilities(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Vulnerabilities", [
        ("Severity", 12), ("Vulnerability", 30), ("Package", 24), ("Installed version", 20), ("Fixed by", 20),
        ("CVSS", 7), ("Image", 40), ("Digest", 24), ("Namespaces", 28), ("Workloads", 45), ("Pods", 7),
        ("Advisory", 45), ("More links", 30), ("Description", 60), ("CVEs", 24), ("KEV due", 12),
        ("Known ransomware use", 10), ("EPSS", 8)])
    signals = vulnerability_signals(ctx.triage.feeds)
    for image in ctx.images:
        if not image.entries:
            continue
        # Shared by every row of this image: built once.
        where = (image.image, image.digest, _names(image.namespaces),
                 _names(f"{ns}/{wl}" for ns, wl in image.workloads), len(image.pods))
        for feature, vuln in image.entries:
            links = safe_links(vuln.link)
            sheet.append([
                sheet.severity(vuln.severity), vuln.name, feature.name, feature.version,
                vuln.fixed_by if vuln.fixed_by else None, vuln.cvss_score, *where,
                sheet.link(links[0]) if links else (vuln.link if vuln.link else None),
                " ".join(links[1:]) if len(links) > 1 else None,
                _short(vuln.description) if vuln.description else None, *signals(sheet, feature, vuln)])
    sheet.close()


def _short(description: str, limit: int = 300) -> str:
    flat = " ".join(description.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _changes(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Changes", [("Change", 10), ("Severity", 12), ("Namespace", 22), ("Workload", 32),
                                     ("Package", 24), ("Vulnerability", 30), ("Image", 40), ("Note", 30)])
    ch = ctx.changes
    if not ch.has_previous:
        sheet.append(["none", None, None, None, None, None, None, "no previous run to compare with"])
    for label, rows in (("new", ch.new()), ("resolved", ch.resolved)):
        for c in rows:
            sheet.append([label, sheet.severity(c.severity), c.namespace, c.workload, c.package,
                          c.vulnerability, c.image, c.note])
    sheet.close()


def _accepted(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Accepted", ACCEPTED_COLUMNS)
    accepted_rows(sheet, ctx)
    sheet.close()


def _coverage(book: Package, ctx: ReportContext) -> None:
    sheet = _Sheet(book, "Coverage", [("What", 10), ("Subject", 60), ("State", 22), ("Job error", 10),
                                            ("Why", 50), ("Namespaces", 30), ("Workloads", 50), ("Pods", 8)])
    if not ctx.coverage:
        sheet.append(["none", "every running image was scanned and every container's image identified"])
    for c in ctx.coverage:
        sheet.append([c.kind, c.subject, c.state, "yes" if c.job_error else "no", c.detail,
                      _names(c.namespaces), _names(c.workloads), c.pods or None])
    sheet.close()
