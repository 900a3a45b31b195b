"""The workbook, read back with openpyxl: sheets, types, links, colours, and no formula anywhere."""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from job.model import ScanState
from job.report import build_context, xlsx as xlsx_module
from job.report.palette import background
from job.report.xlsx import xlsx_bytes
from tests.factories import (DDE, FORMULA, SCRIPT, make_feature, make_hostile_run, make_pod, make_ref,
                             make_result, make_settings, make_snapshot, make_vuln)

WEB = make_ref("shop/web")
QUEUED = make_ref("shop/queued")


def workbook_of(snapshot, results) -> tuple[openpyxl.Workbook, bytes]:
    ctx = build_context(snapshot=snapshot, results=results, outcome=None, previous=None, settings=make_settings())
    data = xlsx_bytes(ctx)
    return openpyxl.load_workbook(io.BytesIO(data)), data


def sample():
    snap = make_snapshot([make_pod("shop", "web-1", WEB), make_pod("shop", "web-2", WEB),
                          make_pod("ops", "queue-1", QUEUED)], owners={"shop": "shop@example.com"})
    results = {WEB: make_result(WEB, make_feature("openssl", "3.0.1",
                                                  make_vuln("CVE-1", "Critical", fixed_by="3.0.13", cvss=9.8),
                                                  make_vuln("CVE-2", "Low"))),
               QUEUED: make_result(QUEUED, state=ScanState.QUEUED, detail="queued for scanning")}
    return snap, results


def rows(ws) -> list[dict]:
    values = list(ws.iter_rows(values_only=True))
    return [dict(zip(values[0], r)) for r in values[1:]]


def test_one_sheet_per_view_with_frozen_header_filter_and_widths():
    wb, _ = workbook_of(*sample())
    assert wb.sheetnames == ["Summary", "Workloads", "Overdue", "Accepted", "Images", "Vulnerabilities", "Changes",
                             "Coverage"]
    for name in wb.sheetnames[1:]:
        ws = wb[name]
        assert ws.freeze_panes == "A2", name
        assert ws.auto_filter.ref == f"A1:{ws.cell(1, ws.max_column).column_letter}{ws.max_row}", name
        assert ws.column_dimensions["A"].width > 8
        assert ws["A1"].font.b


def test_vulnerability_rows_carry_numbers_links_and_severity_colours():
    wb, _ = workbook_of(*sample())
    ws = wb["Vulnerabilities"]
    vulns = rows(ws)
    assert [(r["Severity"], r["Vulnerability"], r["Package"], r["Installed version"], r["Fixed by"]) for r in vulns] \
        == [("Critical", "CVE-1", "openssl", "3.0.1", "3.0.13"), ("Low", "CVE-2", "openssl", "3.0.1", None)]
    assert vulns[0]["CVSS"] == 9.8 and vulns[0]["Pods"] == 2
    assert vulns[0]["Namespaces"] == "shop" and vulns[0]["Workloads"] == "shop/Deployment/web"
    assert ws["A2"].fill.fgColor.rgb.endswith(background("Critical")[1:].upper())
    advisory = ws.cell(2, list(ws[1]).index(next(c for c in ws[1] if c.value == "Advisory")) + 1)
    assert advisory.hyperlink.target == "https://access.redhat.com/security/cve/CVE-1"


def test_images_and_workloads_sheets_count_and_link():
    wb, _ = workbook_of(*sample())
    images = {r["Image"]: r for r in rows(wb["Images"])}
    assert images["quay.io/shop/web"]["Critical"] == 1 and images["quay.io/shop/web"]["Total"] == 2
    assert images["quay.io/shop/queued"]["State"] == "queued"
    assert images["quay.io/shop/queued"]["Why not scanned"] == "queued for scanning"
    assert images["quay.io/shop/web"]["Pod names"] == "shop/web-1, shop/web-2"
    column = next(c.column_letter for c in wb["Images"][1] if c.value == "Registry page")
    page = next(c for c in wb["Images"][column] if c.hyperlink)
    assert page.hyperlink.target.startswith("https://quay.io/repository/shop/web/manifest/sha256:")
    web, = [r for r in rows(wb["Workloads"]) if r["Workload"] == "web"]
    assert (web["Namespace"], web["Owners"], web["Pods"], web["Fixable"]) == ("shop", "shop@example.com", 2, 1)
    assert web["Update to (fixed-by)"] == "openssl 3.0.1 → 3.0.13, fixes 1"
    coverage = rows(wb["Coverage"])
    assert [(c["What"], c["State"], c["Why"]) for c in coverage] == [("image", "queued", "queued for scanning")]


def test_the_snapshot_time_is_a_date():
    wb, _ = workbook_of(*sample())
    taken = next(r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0] == "Pods listed at (UTC)")
    assert taken == dt.datetime(2026, 5, 4, 6, 0)


def test_no_cell_is_a_formula_and_formula_like_text_is_quoted_text():
    wb, data = workbook_of(*make_hostile_run())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
    cells = {c.value: c for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for text in (FORMULA, "=1+1", "@SUM(A1:A2)", DDE, "-1+1", "-2+3"):
        assert cells[text].data_type == "s", text
        assert cells[text].quotePrefix, text
    assert cells[SCRIPT].data_type == "s"
    assert not any(c.hyperlink and not c.hyperlink.target.startswith(("http://", "https://"))
                   for ws in wb for row in ws.iter_rows() for c in row)


def test_control_characters_do_not_break_the_file():
    snap, results = make_hostile_run()
    ref = make_ref("shop/nul")
    snap.pods.append(make_pod("shop", "nul-1", ref))
    results[ref] = make_result(ref, make_feature("pkg\x00\x07", "1\x1b", make_vuln("CVE-\x0b1", "High")))
    wb, _ = workbook_of(snap, results)
    names = [r["Vulnerability"] for r in rows(wb["Vulnerabilities"])]
    assert "CVE-\ufffd1" in names


def test_a_carriage_return_inside_text_reads_back_as_written():
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    wb, _ = workbook_of(snap, {WEB: make_result(WEB, make_feature("pkg\r\nname\rx", "1\r", make_vuln("CVE-1")))})
    row = rows(wb["Vulnerabilities"])[0]
    assert (row["Package"], row["Installed version"]) == ("pkg\r\nname\rx", "1\r")


def test_sheets_continue_when_full_and_links_stop_at_the_budget(monkeypatch):
    monkeypatch.setattr(xlsx_module, "MAX_ROWS_PER_SHEET", 3)
    monkeypatch.setattr(xlsx_module, "MAX_LINKS_PER_SHEET", 2)
    vulns = [make_vuln(f"CVE-{i}", "High") for i in range(5)]
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    wb, _ = workbook_of(snap, {WEB: make_result(WEB, make_feature("openssl", "1", *vulns))})

    assert [n for n in wb.sheetnames if n.startswith("Vulnerabilities")] == ["Vulnerabilities", "Vulnerabilities (2)"]
    found = rows(wb["Vulnerabilities"]) + rows(wb["Vulnerabilities (2)"])
    assert sorted(r["Vulnerability"] for r in found) == [f"CVE-{i}" for i in range(5)]
    advisories = [c for name in ("Vulnerabilities", "Vulnerabilities (2)") for c in wb[name]["L"][1:]]
    assert [bool(c.hyperlink) for c in advisories] == [True, True, False, True, True]
    assert advisories[2].value == "https://access.redhat.com/security/cve/CVE-2"


def test_a_link_longer_than_excel_takes_is_text_not_a_hyperlink():
    # Excel refuses a workbook with a hyperlink address over 2,079 characters; a registry may send any.
    at_most = "https://example.com/a?" + "x" * (xlsx_module.MAX_LINK_CHARS - 22)
    longer = at_most + "y"
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    feature = make_feature("openssl", "1", make_vuln("CVE-1", "High", link=at_most),
                           make_vuln("CVE-2", "High", link=longer))
    wb, _ = workbook_of(snap, {WEB: make_result(WEB, feature)})
    advisories = {r["Vulnerability"]: c for r, c in zip(rows(wb["Vulnerabilities"]), wb["Vulnerabilities"]["L"][1:])}
    assert len(at_most) == 2_079 and advisories["CVE-1"].hyperlink.target == at_most
    assert advisories["CVE-2"].value == longer and advisories["CVE-2"].hyperlink is None


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx", "#N/A"])
def test_text_that_a_spreadsheet_would_read_as_a_formula_is_stored_as_quoted_text(text):
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    wb, _ = workbook_of(snap, {WEB: make_result(WEB, make_feature(text, "1", make_vuln("CVE-1")))})
    cell = wb["Vulnerabilities"]["C2"]
    # (XML reads a CR back as LF.)
    assert (cell.value.replace("\n", "\r"), cell.data_type, cell.quotePrefix) == (text, "s", True)


def test_every_sheet_prints_fit_to_the_paper_width_with_its_header_on_each_page():
    wb, _data = workbook_of(*sample())
    for ws in wb.worksheets:
        setup = ws.page_setup
        assert (setup.orientation, setup.fitToWidth, setup.fitToHeight) == ("landscape", 1, 0), ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.print_title_rows == "$1:$1", ws.title


def test_the_same_run_gives_the_same_bytes_stamped_with_the_time_its_pods_were_listed():
    snap, results = sample()
    first = xlsx_bytes(build_context(snapshot=snap, results=results, outcome=None, previous=None,
                                     settings=make_settings()))
    second = xlsx_bytes(build_context(snapshot=snap, results=results, outcome=None, previous=None,
                                      settings=make_settings()))
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {info.date_time for info in z.infolist()} == {(2026, 5, 4, 6, 0, 0)}
    props = openpyxl.load_workbook(io.BytesIO(first)).properties
    assert props.created == props.modified == dt.datetime(2026, 5, 4, 6, 0)


@pytest.mark.parametrize("taken_at, stamp", [("1970-01-01T00:00:00Z", (1980, 1, 1, 0, 0, 0)),
                                              ("2200-01-01T00:00:00Z", (2107, 12, 31, 23, 59, 58))])
def test_a_time_a_zip_cannot_carry_stamps_the_nearest_one_it_can(taken_at, stamp):
    snap = make_snapshot([make_pod("shop", "web-1", WEB)], taken_at=taken_at)
    _wb, data = workbook_of(snap, {WEB: make_result(WEB, make_feature("openssl", "1", make_vuln("CVE-1")))})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {info.date_time for info in z.infolist()} == {stamp}


def test_a_sheet_continues_before_its_xml_outgrows_a_zip_entry(monkeypatch):
    from job.report import xlsx_package
    monkeypatch.setattr(xlsx_package, "PART_BYTES", 1)  # every row makes a sheet "full"
    vulns = [make_vuln(f"CVE-{i}", "High") for i in range(3)]
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    wb, _ = workbook_of(snap, {WEB: make_result(WEB, make_feature("openssl", "1", *vulns))})

    parts = [n for n in wb.sheetnames if n.startswith("Vulnerabilities")]
    assert parts == ["Vulnerabilities", "Vulnerabilities (2)", "Vulnerabilities (3)"]
    found = [r for name in parts for r in rows(wb[name])]
    assert sorted(r["Vulnerability"] for r in found) == ["CVE-0", "CVE-1", "CVE-2"]
    assert all(wb[name].freeze_panes == "A2" and wb[name].auto_filter.ref == "A1:R2" for name in parts)


def test_styles_links_and_dates_read_back_as_written():
    ref = make_ref("shop/amp")
    snap = make_snapshot([make_pod("shop", "amp-1", ref)])
    link = "https://example.com/advisory?id=1&lang=en"
    wb, _ = workbook_of(snap, {ref: make_result(ref, make_feature("zlib", "1", make_vuln("CVE-9", link=link)))})
    ws = wb["Vulnerabilities"]
    header, advisory = ws["A1"], ws["L2"]
    assert (header.font.b, header.font.color.rgb, header.fill.fgColor.rgb) == (True, "FFFFFFFF", "FF1D2430")
    assert (advisory.value, advisory.hyperlink.target) == (link, link)
    assert (advisory.font.u, advisory.font.color.rgb) == ("single", "FF1B5FA6")
    taken = next(c for row in wb["Summary"].iter_rows() for c in row if isinstance(c.value, dt.datetime))
    assert taken.number_format == "yyyy-mm-dd hh:mm"
    summary = wb["Summary"]
    assert summary["A2"].value == "Image vulnerability report" and summary["A2"].font.sz == 14


def test_an_image_s_cells_read_the_same_on_each_of_its_rows_and_formula_like_text_stays_quoted():
    ref = make_ref("shop/many")
    snap = make_snapshot([make_pod("shop", "many-1", ref), make_pod("ops", "many-2", ref)])
    feature = make_feature("=1+1", "@2", *[make_vuln(f"CVE-{i}", "High") for i in range(4)])
    wb, data = workbook_of(snap, {ref: make_result(ref, feature)})
    ws = wb["Vulnerabilities"]
    found = rows(ws)
    assert len(found) == 4
    assert {(r["Image"], r["Namespaces"], r["Package"], r["Installed version"]) for r in found} \
        == {("quay.io/shop/many", "ops, shop", "=1+1", "@2")}
    for row in ws.iter_rows(min_row=2, min_col=3, max_col=4):
        assert all(c.data_type == "s" and c.quotePrefix for c in row)
    with zipfile.ZipFile(io.BytesIO(data)) as z:  # written once, then shared by the rows below
        assert z.read("xl/sharedStrings.xml").count(b"<t>quay.io/shop/many</t>") == 1
