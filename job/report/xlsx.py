"""The workbook: one sheet per view, every row, streamed (openpyxl write-only mode).

No cell is ever a formula: registry text that a spreadsheet could read as one (a leading =, +,
-, @, tab or CR, or an error literal such as #N/A) is stored as a text cell with Excel's
"quote prefix", so it shows as typed and stays text when edited.

Rows go to openpyxl's write-only stream as whole <row> elements: openpyxl's own cell-by-cell
path costs about 20 µs a cell, too slow for the 2-3 million cells of a large cluster. openpyxl
still writes everything else (workbook, styles, sheet views, filters, hyperlinks); the hooks used
are those of the pinned openpyxl version, and the tests read every sheet back.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterable, NamedTuple

from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.xml.functions import Element, SubElement

from job.model import SEVERITIES
from job.report.fixes import Fix
from job.report.palette import background, foreground
from job.report.text import safe_link, safe_links
from job.report.xlsx_accepted import ACCEPTED_COLUMNS, accepted_rows
from job.report.xlsx_triage import (OVERDUE_COLUMNS, day_date, findings_text, overdue_rows, triage_rows,
                                    vulnerability_signals)
from job.report.view import SEVERITIES_DESC, Counts, ReportContext, WorkloadItem

#: Excel keeps at most this many hyperlinks per sheet; rows past it show the URL as text.
MAX_LINKS_PER_SHEET = 65_000
#: Data rows per sheet (Excel's limit is 1,048,576 rows with the header); more go to "Name (2)" ...
MAX_ROWS_PER_SHEET = 1_048_575
_CELL_LIMIT = 32_767
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot).
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_LIST_LIMIT = 30  # names listed in one cell before "(+N more)"

_HEADER_FONT = Font(bold=True, color="FFFFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="FF1D2430")
_LINK_FONT = Font(color="FF1B5FA6", underline="single")
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_SEV_FILL = {s: PatternFill("solid", fgColor="FF" + background(s)[1:].upper()) for s in SEVERITIES}
_SEV_FONT = {s: Font(bold=True, color="FF" + foreground(s)[1:].upper()) for s in SEVERITIES}
_DATE_FORMAT = "yyyy-mm-dd hh:mm"


def text(value: str) -> str:
    """A string as a cell value: characters XML cannot carry replaced, bounded to Excel's cell size."""
    return _ILLEGAL.sub("\ufffd", value)[:_CELL_LIMIT]


class Styled(NamedTuple):
    """A cell value with a style (an index of the workbook's cell styles) and maybe a hyperlink."""

    value: Any
    style: int
    link: str = ""


class _Styles:
    """The workbook's cell styles, each registered once (openpyxl hashes a style on every use)."""

    def __init__(self, wb: Workbook) -> None:
        self.wb = wb
        self._ids: dict[tuple, int] = {}
        self._quoted: dict[int, int] = {}

    def id(self, ws: Any, *, font: Font | None = None, fill: PatternFill | None = None,
           number_format: str = "") -> int:
        key = (id(font), id(fill), number_format)
        found = self._ids.get(key)
        if found is None:
            proto = WriteOnlyCell(ws)
            if font is not None:
                proto.font = font
            if fill is not None:
                proto.fill = fill
            if number_format:
                proto.number_format = number_format
            found = self._ids[key] = proto.style_id
        return found

    def quoted(self, style: int) -> int:
        """The same style with Excel's quote prefix: the text is shown as typed, never evaluated."""
        found = self._quoted.get(style)
        if found is None:
            array = StyleArray(self.wb._cell_styles[style])
            array.quotePrefix = 1
            found = self._quoted[style] = self.wb._cell_styles.add(array)
        return found


class _Sheet:
    """One view: header, widths, frozen first row, autofilter; continues on a new sheet when full."""

    def __init__(self, wb: Workbook, styles: _Styles, title: str, columns: list[tuple[str, int]]) -> None:
        self.wb, self.styles, self.title, self.columns = wb, styles, title, columns
        self.letters = [get_column_letter(i) for i in range(1, len(columns) + 1)]
        self.part = 0
        self._open()

    def _open(self) -> None:
        self.part += 1
        self.ws = self.wb.create_sheet(self.title if self.part == 1 else f"{self.title} ({self.part})")
        for letter, (_name, width) in zip(self.letters, self.columns):
            self.ws.column_dimensions[letter].width = width
        self.ws.freeze_panes = "A2"
        # Printed: landscape, every column on the paper's width, the header row on every page.
        self.ws.page_setup.orientation = "landscape"
        self.ws.page_setup.fitToWidth, self.ws.page_setup.fitToHeight = 1, 0
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        self.ws.print_title_rows = "1:1"
        self.rows = 0
        self.links = 0
        # Rows arrive ready: openpyxl passes them through untouched to _write_row.
        self.ws._get_writer()
        self.ws._values_to_row = lambda values, row_idx: values
        self.ws._writer.write_row = self._write_row
        header = self.style(font=_HEADER_FONT, fill=_HEADER_FILL)
        self.ws.append([Styled(name, header) for name, _w in self.columns])

    def style(self, **kwargs: Any) -> int:
        return self.styles.id(self.ws, **kwargs)

    def severity(self, name: str) -> Any:
        if name not in _SEV_FILL:
            return name or None
        return Styled(name, self.style(font=_SEV_FONT[name], fill=_SEV_FILL[name]))

    def link(self, url: str, label: str = "") -> Any:
        """A hyperlink cell for an http(s) URL (plain text once the sheet's hyperlinks run out)."""
        url = safe_link(url)
        if not url:
            return label or None
        return Styled(label or url, self.style(font=_LINK_FONT), url)

    def date(self, value: dt.datetime | None) -> Any:
        return None if value is None else Styled(value, self.style(number_format=_DATE_FORMAT))

    def bold(self, value: Any) -> Styled:
        return Styled(value, self.style(font=_BOLD))

    def title_cell(self, value: str) -> Styled:
        return Styled(value, self.style(font=_TITLE_FONT))

    def append(self, values: Iterable[Any]) -> None:
        if self.rows >= MAX_ROWS_PER_SHEET:
            self.close()
            self._open()
        self.rows += 1
        self.ws.append(list(values))

    def close(self) -> None:
        if self.rows:
            self.ws.auto_filter.ref = f"A1:{self.letters[-1]}{self.rows + 1}"

    def _write_row(self, xf: Any, row: list[Any], row_idx: int) -> None:
        """One <row> element, built whole and written at once."""
        r = str(row_idx)
        el = Element("row", r=r)
        for letter, item in zip(self.letters, row):
            style, link = 0, ""
            if isinstance(item, Styled):
                item, style, link = item
                if link and self.links >= MAX_LINKS_PER_SHEET:
                    style, link = 0, ""
            if item is None or item == "":
                continue
            ref = letter + r
            if isinstance(item, str):
                value = text(item)
                if value.startswith(_FORMULA_START) or value in ERROR_CODES:
                    style = self.styles.quoted(style)
                c = SubElement(el, "c", {"r": ref, "t": "inlineStr", "s": str(style)} if style else
                               {"r": ref, "t": "inlineStr"})
                t = SubElement(SubElement(c, "is"), "t")
                t.text = value
                if value != value.strip():
                    t.set(_XML_SPACE, "preserve")
            else:
                if isinstance(item, dt.datetime):
                    item = to_excel(item)
                elif isinstance(item, bool) or not isinstance(item, (int, float)):
                    raise TypeError(f"no cell type for {type(item).__name__}")
                c = SubElement(el, "c", {"r": ref, "t": "n", "s": str(style)} if style else {"r": ref, "t": "n"})
                SubElement(c, "v").text = repr(item)
            if link:
                self.links += 1
                self.ws._hyperlinks.append(Hyperlink(ref=ref, target=link))
        xf.write(el)


# --- the sheets -----------------------------------------------------------------------------------


def write_xlsx(ctx: ReportContext, *, dest: Path | BinaryIO) -> None:
    wb = Workbook(write_only=True)
    styles = _Styles(wb)
    for sheet in (_summary, _workloads, _overdue, _accepted, _images, _vulnerabilities, _changes, _coverage):
        sheet(wb, styles, ctx)
    wb.save(dest)


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


def _summary(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Summary", [("Item", 34), ("Value", 70), ("New", 12), ("Resolved", 12),
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
                 f"later rows show the URL as text."])
    sheet.close()


def _workloads(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Workloads", [
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


def _overdue(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Overdue", OVERDUE_COLUMNS)
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


def _images(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Images", [
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


def _vulnerabilities(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Vulnerabilities", [
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


def _changes(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Changes", [("Change", 10), ("Severity", 12), ("Namespace", 22), ("Workload", 32),
                                   ("Package", 24), ("Vulnerability", 30), ("Image", 40), ("Note", 30)])
    ch = ctx.changes
    if not ch.has_previous:
        sheet.append(["none", None, None, None, None, None, None, "no previous run to compare with"])
    for label, rows in (("new", ch.new()), ("resolved", ch.resolved)):
        for c in rows:
            sheet.append([label, sheet.severity(c.severity), c.namespace, c.workload, c.package,
                          c.vulnerability, c.image, c.note])
    sheet.close()


def _accepted(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Accepted", ACCEPTED_COLUMNS)
    accepted_rows(sheet, ctx)
    sheet.close()


def _coverage(wb: Workbook, styles: _Styles, ctx: ReportContext) -> None:
    sheet = _Sheet(wb, styles, "Coverage", [("What", 10), ("Subject", 60), ("State", 22), ("Job error", 10),
                                            ("Why", 50), ("Namespaces", 30), ("Workloads", 50), ("Pods", 8)])
    if not ctx.coverage:
        sheet.append(["none", "every running image was scanned and every container's image identified"])
    for c in ctx.coverage:
        sheet.append([c.kind, c.subject, c.state, "yes" if c.job_error else "no", c.detail,
                      _names(c.namespaces), _names(c.workloads), c.pods or None])
    sheet.close()
