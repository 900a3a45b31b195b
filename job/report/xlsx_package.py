"""The workbook's file: an Office Open XML package, written as it goes, in constant memory.

Only what the workbook uses: inline strings, numbers, dates, cell styles (fonts, solid fills, a
number format, Excel's quote prefix), a frozen header, an autofilter, print setup and hyperlinks.
Each part goes straight into the zip once: a sheet's rows as they come, built as text (an XML
library's element per cell was most of the workbook's time at 3 million cells), its hyperlinks
kept in a temporary file until the sheet ends rather than as objects in memory (openpyxl held
two objects a link until it saved: ~120 MB). Every entry carries the run's time, so the same run
gives the same bytes.

No cell is ever a formula: there is no way to write one here. Text a spreadsheet program would
read as one when edited (a leading =, +, -, @, tab or CR, or an error literal such as #N/A) gets
the quote prefix, so it shows as typed and stays text.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import zipfile
from typing import IO, Any, BinaryIO, NamedTuple
from xml.sax.saxutils import escape, quoteattr

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument."
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_CELL_LIMIT = 32_767
_RISKY_FIRST = frozenset("=+-@\t\r#")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
# Characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot): replaced one for one.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_CR = {"\r": "&#13;"}
_EPOCH = dt.datetime(1899, 12, 30)
# The times a zip entry can carry (a later one fails the write).
_ZIP_FIRST, _ZIP_LAST = dt.datetime(1980, 1, 1), dt.datetime(2107, 12, 31, 23, 59, 58)
_CHUNK_ROWS = 512  # rows encoded and compressed together, or fewer when they hold more than:
_CHUNK_CHARS = 1 << 20
#: A sheet's XML stays under zip's 2 GiB limit for an entry without ZIP64 extensions (which some
#: Excel versions refuse): past this many bytes, the sheet is full (with room for its last row, a
#: chunk and the hyperlinks: a row holds at most 27 cells of 32,767 characters).
PART_BYTES = 2**31 - 2**26


def column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class Style(NamedTuple):
    """A cell style. Colours are ARGB hex ("FF1D2430")."""

    bold: bool = False
    size: int = 0
    color: str = ""
    underline: bool = False
    fill: str = ""
    number_format: str = ""
    quote: bool = False


class Styled(NamedTuple):
    """A cell value with a style (an index from Styles.id) and maybe a hyperlink."""

    value: Any
    style: int
    link: str = ""


class Styles:
    """The workbook's cell styles; index 0 is the default."""

    def __init__(self) -> None:
        self._all = [Style()]
        self._ids = {Style(): 0}
        self._quoted: dict[int, int] = {}
        self.attr = [""]  # style index → its cell attribute, ' s="i"'

    def id(self, style: Style) -> int:
        found = self._ids.get(style)
        if found is None:
            found = self._ids[style] = len(self._all)
            self._all.append(style)
            self.attr.append(f' s="{found}"')
        return found

    def quoted(self, index: int) -> int:
        """The same style with the quote prefix: the text is shown as typed, never evaluated."""
        found = self._quoted.get(index)
        if found is None:
            found = self._quoted[index] = self.id(self._all[index]._replace(quote=True))
        return found

    def xml(self) -> str:
        fonts = sorted({(s.bold, s.size, s.color, s.underline) for s in self._all}, key=lambda f: (f != _PLAIN, f))
        fills = sorted({s.fill for s in self._all if s.fill})
        formats = sorted({s.number_format for s in self._all if s.number_format})
        font_xml = "".join(
            "<font>" + ("<b/>" if b else "") + ('<u val="single"/>' if u else "") + f'<sz val="{size or 11}"/>'
            + (f'<color rgb="{color}"/>' if color else "") + '<name val="Calibri"/><family val="2"/></font>'
            for b, size, color, u in fonts)
        fill_xml = "".join(f'<fill><patternFill patternType="solid"><fgColor rgb="{f}"/><bgColor indexed="64"/>'
                           f'</patternFill></fill>' for f in fills)
        xfs = []
        for s in self._all:
            font = fonts.index((s.bold, s.size, s.color, s.underline))
            fill = fills.index(s.fill) + 2 if s.fill else 0
            fmt = formats.index(s.number_format) + 164 if s.number_format else 0
            xfs.append(f'<xf numFmtId="{fmt}" fontId="{font}" fillId="{fill}" borderId="0" xfId="0"'
                       + (' applyNumberFormat="1"' if fmt else "") + (' applyFont="1"' if font else "")
                       + (' applyFill="1"' if fill else "") + (' quotePrefix="1"' if s.quote else "") + "/>")
        return (f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
                + (f'<numFmts count="{len(formats)}">' + "".join(
                    f'<numFmt numFmtId="{164 + i}" formatCode={quoteattr(f)}/>' for i, f in enumerate(formats))
                   + "</numFmts>" if formats else "")
                + f'<fonts count="{len(fonts)}">{font_xml}</fonts>'
                + f'<fills count="{len(fills) + 2}"><fill><patternFill patternType="none"/></fill>'
                  f'<fill><patternFill patternType="gray125"/></fill>{fill_xml}</fills>'
                + '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
                + '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
                + f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
                + '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
                + "</styleSheet>")


_PLAIN = (False, 0, "", False)


class Package:
    """The zip: sheets one after the other (one open at a time), then the parts that list them."""

    def __init__(self, dest: str | BinaryIO, *, when: dt.datetime | None, title: str) -> None:
        self.zip = zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED)
        self.when = _ZIP_FIRST if when is None else min(max(when, _ZIP_FIRST), _ZIP_LAST)
        self.title = title
        self.styles = Styles()
        self.sheets: list[tuple[str, str, int]] = []  # title, last column letter, rows (0: no filter)
        self._shared: IO[bytes] | None = None  # the shared strings' <si> elements, until the end
        self.shared = 0
        self.shared_uses = 0

    def share(self, inner: str) -> int:
        """A shared string's index: the text of a run of equal cells down a column is written once."""
        if self._shared is None:
            self._shared = tempfile.TemporaryFile()
        self._shared.write(f"<si>{inner}</si>".encode("utf-8"))
        self.shared += 1
        return self.shared - 1

    def entry(self, name: str) -> IO[bytes]:
        info = zipfile.ZipInfo(name, date_time=self.when.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        return self.zip.open(info, "w")

    def write(self, name: str, text: str) -> None:
        with self.entry(name) as fh:
            fh.write(text.encode("utf-8"))

    def sheet(self, title: str, widths: list[int], *, links: int) -> "SheetPart":
        """A new sheet (the one before it closed); `links`: how many cells may be hyperlinks."""
        return SheetPart(self, len(self.sheets) + 1, title, widths, links=links)

    def close(self) -> None:
        n = len(self.sheets)
        rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                       for i in range(1, n + 1))
        if self._shared is not None:
            with self.entry("xl/sharedStrings.xml") as fh:
                fh.write(f'{_HEAD}<sst xmlns="{_MAIN}" count="{self.shared_uses}" uniqueCount="{self.shared}">'
                         .encode("utf-8"))
                self._shared.seek(0)
                shutil.copyfileobj(self._shared, fh)
                fh.write(b"</sst>")
            self._shared.close()
            rels += f'<Relationship Id="rId{n + 2}" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
        self.write("xl/_rels/workbook.xml.rels", f'{_HEAD}<Relationships xmlns="{_PKG_REL}">{rels}'
                   f'<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>')
        sheets = "".join(f'<sheet name={quoteattr(t)} sheetId="{i}" r:id="rId{i}"/>'
                         for i, (t, _c, _r) in enumerate(self.sheets, 1))
        names = []
        for i, (t, last, rows) in enumerate(self.sheets):
            quoted = escape("'" + t.replace("'", "''") + "'")
            if rows:
                names.append(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                             f'{quoted}!$A$1:${last}${rows}</definedName>')
            names.append(f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{quoted}!$1:$1</definedName>')
        self.write("xl/workbook.xml", f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><workbookPr/>'
                   f'<bookViews><workbookView activeTab="0"/></bookViews><sheets>{sheets}</sheets>'
                   f'<definedNames>{"".join(names)}</definedNames><calcPr calcId="124519" fullCalcOnLoad="1"/>'
                   f'</workbook>')
        self.write("xl/styles.xml", self.styles.xml())
        stamp = self.when.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.write("docProps/core.xml", f'{_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
                   'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
                   'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                   f'<dc:title>{escape(_ILLEGAL.sub("", self.title))}</dc:title><dc:creator>imvjob</dc:creator>'
                   f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
                   f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>')
        self.write("docProps/app.xml", f'{_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/'
                   '2006/extended-properties"><Application>Microsoft Excel</Application></Properties>')
        self.write("_rels/.rels", f'{_HEAD}<Relationships xmlns="{_PKG_REL}">'
                   f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
                   f'<Relationship Id="rId2" Type="{_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
                   f'<Relationship Id="rId3" Type="{_REL}/extended-properties" Target="docProps/app.xml"/>'
                   "</Relationships>")
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                            f'ContentType="{_TYPE}spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
        if self.shared:
            overrides += (f'<Override PartName="/xl/sharedStrings.xml" '
                          f'ContentType="{_TYPE}spreadsheetml.sharedStrings+xml"/>')
        self.write("[Content_Types].xml", f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                   'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                   f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}spreadsheetml.sheet.main+xml"/>'
                   f'{overrides}<Override PartName="/xl/styles.xml" ContentType="{_TYPE}spreadsheetml.styles+xml"/>'
                   '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
                   'core-properties+xml"/><Override PartName="/docProps/app.xml" '
                   f'ContentType="{_TYPE}extended-properties+xml"/></Types>')
        self.zip.close()


class SheetPart:
    """One worksheet: its head at once, rows as they come, then filter, hyperlinks and print setup."""

    def __init__(self, package: Package, index: int, title: str, widths: list[int], *, links: int) -> None:
        self.package, self.index, self.title = package, index, title
        self.letters = [column_letter(i) for i in range(1, len(widths) + 1)]
        self.styles = package.styles
        self.rows = 0
        self.link_budget = links
        self.links = 0
        self._link_refs: IO[bytes] | None = None  # <hyperlink> elements, then their relationships
        self._link_rels: IO[bytes] | None = None
        # Each column's last text cell: value, style, its attribute, its shared-string tail, its <t>.
        self._last: list[tuple[Any, int, str, str, str]] = [(None, 0, "", "", "")] * len(widths)
        self._chunk: list[str] = []
        self._pending = 0  # characters in _chunk
        self.written = 0  # bytes of XML written
        self._out = package.entry(f"xl/worksheets/sheet{index}.xml")
        cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(widths, 1))
        selected = ' tabSelected="1"' if index == 1 else ""
        self._out.write(
            f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
            f'<sheetViews><sheetView{selected} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
            f'</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
            .encode("utf-8"))

    def row(self, cells: list[Any]) -> None:
        """One row: str, int, float, datetime, None (an empty cell) or Styled of those."""
        self.rows += 1
        r = str(self.rows)
        parts = [f'<row r="{r}">']
        add = parts.append
        last = self._last
        package = self.package
        for i, (letter, item) in enumerate(zip(self.letters, cells)):
            style, link = 0, ""
            if type(item) is Styled:
                item, style, link = item
                if link and self.links >= self.link_budget:  # past the budget: the URL as plain text
                    style, link = 0, ""
            if item is None:
                continue
            seen = last[i]
            if seen[0] is item and seen[1] == style:
                # The text of the row above (an image's cells on each of its rows): one shared string.
                tail = seen[3] or self._share(i)
                package.shared_uses += 1
            elif type(item) is str:
                if not item:
                    continue
                s_attr, inner = self._text(item, style)
                tail = f' t="inlineStr"{s_attr}><is>{inner}</is></c>'
                last[i] = (item, style, s_attr, "", inner)
            else:
                tail = self._number(item, style)
                if not tail:
                    continue
            add(f'<c r="{letter}{r}"{tail}')
            if link:
                self._link(f"{letter}{r}", link)
        add("</row>")
        text = "".join(parts)
        self._chunk.append(text)
        self._pending += len(text)
        if len(self._chunk) >= _CHUNK_ROWS or self._pending >= _CHUNK_CHARS:
            self._flush()

    def _text(self, item: str, style: int) -> tuple[str, str]:
        """A text cell's style attribute and <t> element: bounded, escaped, quoted when a formula could be
        read in it."""
        if len(item) > _CELL_LIMIT:
            item = item[:_CELL_LIMIT]
        printable = item.isprintable()  # false for each illegal character and for CR (rare: one quick test first)
        if not printable:
            item = _ILLEGAL.sub("\ufffd", item)
        first = item[0]
        if first in _RISKY_FIRST and (item.startswith(_FORMULA_START) or item in _ERROR_CODES):
            style = self.styles.quoted(style)
        space = ' xml:space="preserve"' if first <= " " or item[-1] <= " " else ""
        if not printable:
            item = escape(item, _CR)  # a parser reads a bare CR as LF
        elif "&" in item or "<" in item or ">" in item:
            item = escape(item)
        return self.styles.attr[style], f"<t{space}>{item}</t>"

    def _share(self, column: int) -> str:
        item, style, s_attr, _tail, inner = self._last[column]
        tail = f' t="s"{s_attr}><v>{self.package.share(inner)}</v></c>'
        self._last[column] = (item, style, s_attr, tail, "")
        return tail

    def _number(self, item: Any, style: int) -> str:
        kind = type(item)
        if kind is dt.datetime:
            delta = item - _EPOCH
            item = delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
        elif kind is not int and kind is not float:
            raise TypeError(f"no cell type for {kind.__name__}")
        number = repr(item)
        if number in ("nan", "inf", "-inf"):  # no such number in a spreadsheet
            return ""
        return f'{self.styles.attr[style]}><v>{number}</v></c>'

    def full(self) -> bool:
        """Whether another row could take the sheet past PART_BYTES (a character is at most 4 bytes)."""
        return self.written + 4 * self._pending >= PART_BYTES

    def _link(self, ref: str, url: str) -> None:
        if self._link_refs is None:
            self._link_refs, self._link_rels = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        assert self._link_rels is not None
        self.links += 1
        rid = f"rId{self.links}"
        self._link_refs.write(f'<hyperlink ref="{ref}" r:id="{rid}"/>'.encode("utf-8"))
        target = escape(url if url.isprintable() else _ILLEGAL.sub("\ufffd", url), _ATTR)
        self._link_rels.write(f'<Relationship Id="{rid}" Type="{_REL}/hyperlink" Target="{target}" '
                              f'TargetMode="External"/>'.encode("utf-8"))

    def _flush(self) -> None:
        text = "".join(self._chunk)
        self._chunk.clear()
        self._pending = 0
        data = text.encode("utf-8")
        self.written += len(data)
        self._out.write(data)

    def close(self) -> None:
        self._flush()
        last = self.letters[-1]
        self._out.write(b"</sheetData>")
        if self.rows > 1:
            self._out.write(f'<autoFilter ref="A1:{last}{self.rows}"/>'.encode("utf-8"))
        if self._link_refs is not None:
            self._out.write(b"<hyperlinks>")
            self._link_refs.seek(0)
            shutil.copyfileobj(self._link_refs, self._out)
            self._link_refs.close()
            self._out.write(b"</hyperlinks>")
        self._out.write(b'<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>'
                        b'<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/></worksheet>')
        self._out.close()
        if self._link_rels is not None:
            with self.package.entry(f"xl/worksheets/_rels/sheet{self.index}.xml.rels") as fh:
                fh.write(f'{_HEAD}<Relationships xmlns="{_PKG_REL}">'.encode("utf-8"))
                self._link_rels.seek(0)
                shutil.copyfileobj(self._link_rels, fh)
                fh.write(b"</Relationships>")
            self._link_rels.close()
        self.package.sheets.append((self.title, last, self.rows if self.rows > 1 else 0))
