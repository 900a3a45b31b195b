"""The workbook: one sheet per view, every row, streamed (openpyxl write-only mode).

No cell is ever a formula: registry text that a spreadsheet could read as one (a leading =, +,
-, @, tab or CR, or an error literal such as #N/A) is stored as a text cell with Excel's
"quote prefix", so it shows as typed and stays text when edited.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from job.model import SEVERITIES
from job.report.context import SEVERITIES_DESC, Counts, Fix, ReportContext
from job.report.palette import background, foreground
from job.report.text import safe_link, safe_links

#: Excel keeps at most this many hyperlinks per sheet; rows past it show the URL as text.
MAX_LINKS_PER_SHEET = 65_000
#: Data rows per sheet (Excel's limit is 1,048,576 rows with the header); more go to "Name (2)" ...
MAX_ROWS_PER_SHEET = 1_048_575
_CELL_LIMIT = 32_767
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot).
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_LIST_LIMIT = 30  # names listed in one cell before "(+N more)"

_HEADER_FONT = Font(bold=True, color="FFFFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="FF1D2430")
_LINK_FONT = Font(color="FF1B5FA6", underline="single")
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_WRAP = Alignment(wrap_text=True, vertical="top")
_SEV_FILL = {s: PatternFill("solid", fgColor="FF" + background(s)[1:].upper()) for s in SEVERITIES}
_SEV_FONT = {s: Font(bold=True, color="FF" + foreground(s)[1:].upper()) for s in SEVERITIES}
_DATE_FORMAT = "yyyy-mm-dd hh:mm"


def text(value: str) -> str:
    """A string as a cell value: characters XML cannot carry replaced, bounded to Excel's cell size.
    (_Sheet.append makes the ones a spreadsheet could read as a formula inert.)"""
    return _ILLEGAL.sub("\ufffd", value)[:_CELL_LIMIT]


class _Sheet:
    """One view: header, widths, frozen first row, autofilter; continues on a new sheet when full."""

    def __init__(self, wb: Workbook, title: str, columns: list[tuple[str, int]]) -> None:
        self.wb, self.title, self.columns = wb, title, columns
        self.part = 0
        self._open()

    def _open(self) -> None:
        self.part += 1
        self.ws = self.wb.create_sheet(self.title if self.part == 1 else f"{self.title} ({self.part})")
        for i, (_name, width) in enumerate(self.columns, 1):
            self.ws.column_dimensions[get_column_letter(i)].width = width
        self.ws.freeze_panes = "A2"
        self.rows = 0
        self.links = 0
        self.ws.append([self._styled(name, font=_HEADER_FONT, fill=_HEADER_FILL) for name, _w in self.columns])

    def _styled(self, value: Any, *, font: Font | None = None, fill: PatternFill | None = None,
                number_format: str = "", alignment: Alignment | None = None) -> Cell:
        self._room()  # a cell belongs to the sheet its row goes to
        cell = WriteOnlyCell(self.ws)
        _set(cell, value)
        if font is not None:
            cell.font = font
        if fill is not None:
            cell.fill = fill
        if number_format:
            cell.number_format = number_format
        if alignment is not None:
            cell.alignment = alignment
        return cell

    def severity(self, name: str) -> Any:
        if name not in _SEV_FILL:
            return text(name) if name else None
        return self._styled(name, font=_SEV_FONT[name], fill=_SEV_FILL[name])

    def link(self, url: str, label: str = "") -> Any:
        """A hyperlink cell for an http(s) URL; plain text past the sheet's hyperlink budget."""
        url = safe_link(url)
        if not url:
            return text(label) if label else None
        if self.links >= MAX_LINKS_PER_SHEET:
            return text(label or url)
        self.links += 1
        cell = self._styled(label or url, font=_LINK_FONT)
        cell.hyperlink = url
        return cell

    def date(self, value: dt.datetime | None) -> Any:
        return None if value is None else self._styled(value, number_format=_DATE_FORMAT)

    def bold(self, value: Any) -> Cell:
        return self._styled(value, font=_BOLD)

    def _room(self) -> None:
        if self.rows >= MAX_ROWS_PER_SHEET:
            self.close()
            self._open()

    def append(self, values: Iterable[Any]) -> None:
        self._room()
        self.rows += 1
        self.ws.append([self._inert(v) for v in values])

    def _inert(self, value: Any) -> Any:
        if isinstance(value, str) and value and (value.startswith(_FORMULA_START) or value in ERROR_CODES):
            cell = WriteOnlyCell(self.ws)
            _set(cell, value)
            return cell
        return value

    def close(self) -> None:
        if self.rows:
            last = get_column_letter(len(self.columns))
            self.ws.auto_filter.ref = f"A1:{last}{self.rows + 1}"


def _set(cell: Cell, value: Any) -> None:
    """Give a cell its value; text is always text (data type 's', quote prefix when it could be a formula)."""
    if isinstance(value, str):
        clean = _ILLEGAL.sub("\ufffd", value)[:_CELL_LIMIT]
        cell._value = clean
        cell.data_type = "s"
        if clean.startswith(_FORMULA_START) or clean in ERROR_CODES:
            cell.quotePrefix = True
    else:
        cell.value = value


# --- the sheets -----------------------------------------------------------------------------------


def write_xlsx(ctx: ReportContext, dest: Path | BinaryIO) -> None:
    wb = Workbook(write_only=True)
    _summary(wb, ctx)
    _workloads(wb, ctx)
    _images(wb, ctx)
    _vulnerabilities(wb, ctx)
    _changes(wb, ctx)
    _coverage(wb, ctx)
    wb.save(dest)


def xlsx_bytes(ctx: ReportContext) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(ctx, buffer)
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
    return "; ".join(f"{f.package} {f.installed} → {', '.join(f.fixed_by)}" for f in fixes)


def _summary(wb: Workbook, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, "Summary", [("Item", 34), ("Value", 70), ("New", 12), ("Resolved", 12),
                                   ("Vulnerable images", 18)])
    t, ch = ctx.totals, ctx.changes
    add = sheet.append
    add([sheet._styled("Image vulnerability report", font=_TITLE_FONT)])
    add(["Cluster", text(ctx.cluster)])
    add(["Pods listed at (UTC)", sheet.date(_taken_at(ctx.taken_at)) or text(ctx.taken_at)])
    add(["Headline", text(ctx.headline)])
    add(["Namespaces", text(", ".join(ctx.only)) if ctx.only is not None else
         (text(", ".join(ctx.scope)) if ctx.scope is not None else "all")])
    add(["Source", text(ctx.source)])
    add(["Previous run (UTC)", (sheet.date(_taken_at(ch.previous_taken_at)) or text(ch.previous_taken_at))
         if ch.has_previous else "none: new and resolved start with the next run"])
    add([])
    add([sheet.bold("Severity"), sheet.bold("Vulnerabilities"), sheet.bold("New"), sheet.bold("Resolved"),
         sheet.bold("Vulnerable images")])
    for s in SEVERITIES_DESC:
        rank = SEVERITIES.index(s)
        add([sheet.severity(s), t.counts.of(s), ch.new_counts.of(s) if ch.has_previous else None,
             ch.resolved_counts.of(s) if ch.has_previous else None, t.images_by_highest[rank]])
    add([sheet.bold("All"), t.counts.total, ch.new_counts.total if ch.has_previous else None,
         ch.resolved_counts.total if ch.has_previous else None, t.vulnerable])
    add(["Fixable (a fixed-by version exists)", t.counts.fixable])
    add(["Without a fix", t.counts.total - t.counts.fixable])
    add([])
    add(["Images running", t.images])
    add(["Images scanned", t.scanned])
    add(["Images not scanned", t.unscanned])
    for state, n in t.unscanned_by_state:
        add([text(f"  not scanned: {state}"), n])
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
        add(["written to", text(a.target)])
    add([])
    add(["Note", f"Counts are vulnerability entries (as in ImageManifestVulns); each image is counted once in "
                 f"the cluster totals. Hyperlinks stop after {MAX_LINKS_PER_SHEET:,} per sheet (Excel's limit); "
                 f"later rows show the URL as text."])
    sheet.close()


def _workloads(wb: Workbook, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, "Workloads", [
        ("Namespace", 22), ("Kind", 13), ("Workload", 30), ("Owners", 30), ("Highest severity", 15),
        *[(s, 10) for s in SEVERITIES_DESC], ("Total", 9), ("Fixable", 9), ("New", 8),
        ("Images not scanned", 12), ("Containers unresolved", 12), ("Pods", 8), ("Update to (fixed-by)", 70),
        ("Images", 70)])
    for w in ctx.workloads:
        sheet.append([
            text(w.namespace), text(w.workload.kind), text(w.workload.name), text(", ".join(w.owners)),
            sheet.severity(w.counts.highest), *_severity_counts(w.counts), w.counts.total, w.counts.fixable,
            len(w.new_keys), len(w.unscanned), w.unresolved, len(w.pods), text(_fix_text(w.fixes)),
            text(_names(str(i.ref) for i in w.images))])
    sheet.close()


def _images(wb: Workbook, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, "Images", [
        ("Image", 45), ("Digest", 24), ("State", 14), ("Why not scanned", 30), ("Highest severity", 15),
        *[(s, 10) for s in SEVERITIES_DESC], ("Total", 9), ("Fixable", 9), ("Namespaces", 30),
        ("Workloads", 50), ("Pods", 8), ("Registry page", 40), ("Scanned by", 10)])
    for i in ctx.images:
        sheet.append([
            text(i.image), text(i.digest), text(i.state), text(i.detail), sheet.severity(i.counts.highest),
            *_severity_counts(i.counts), i.counts.total, i.counts.fixable, text(_names(i.namespaces)),
            text(_names(f"{ns}/{wl}" for ns, wl in i.workloads)), len(i.pods), sheet.link(i.page_url),
            text(i.backend)])
    sheet.close()


def _vulnerabilities(wb: Workbook, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, "Vulnerabilities", [
        ("Severity", 12), ("Vulnerability", 30), ("Package", 24), ("Installed version", 20), ("Fixed by", 20),
        ("CVSS", 7), ("Image", 40), ("Digest", 24), ("Namespaces", 28), ("Workloads", 45), ("Pods", 7),
        ("Advisory", 45), ("More links", 30), ("Description", 60)])
    for image in ctx.images:
        if not image.entries:
            continue
        # Shared by every row of this image: built once.
        where = (text(image.image), text(image.digest), text(_names(image.namespaces)),
                 text(_names(f"{ns}/{wl}" for ns, wl in image.workloads)), len(image.pods))
        for feature, vuln in image.entries:
            links = safe_links(vuln.link)
            sheet.append([
                sheet.severity(vuln.severity), text(vuln.name), text(feature.name), text(feature.version),
                text(vuln.fixed_by) if vuln.fixed_by else None, vuln.cvss_score, *where,
                sheet.link(links[0]) if links else (text(vuln.link) if vuln.link else None),
                text(" ".join(links[1:])) if len(links) > 1 else None,
                text(_short(vuln.description)) if vuln.description else None])
    sheet.close()


def _short(description: str, limit: int = 300) -> str:
    flat = " ".join(description.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _changes(wb: Workbook, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, "Changes", [("Change", 10), ("Severity", 12), ("Namespace", 22), ("Workload", 32),
                                   ("Package", 24), ("Vulnerability", 30), ("Image", 40), ("Note", 30)])
    ch = ctx.changes
    if not ch.has_previous:
        sheet.append(["none", None, None, None, None, None, None, "no previous run to compare with"])
    for label, rows in (("new", ch.new()), ("resolved", ch.resolved)):
        for c in rows:
            sheet.append([label, sheet.severity(c.severity), text(c.namespace), text(c.workload), text(c.package),
                          text(c.vulnerability), text(c.image), text(c.note)])
    sheet.close()


def _coverage(wb: Workbook, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, "Coverage", [("What", 10), ("Subject", 60), ("State", 22), ("Job error", 10), ("Why", 50),
                                    ("Namespaces", 30), ("Workloads", 50), ("Pods", 8)])
    if not ctx.coverage:
        sheet.append(["none", "every running image was scanned and every container's image identified"])
    for c in ctx.coverage:
        sheet.append([text(c.kind), text(c.subject), text(c.state), "yes" if c.job_error else "no", text(c.detail),
                      text(_names(c.namespaces)), text(_names(c.workloads)), c.pods or None])
    sheet.close()
