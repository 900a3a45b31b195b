"""report.xlsx opened by LibreOffice Calc (headless): if it cannot open it, neither can a user.

Each sheet is exported to CSV as Calc shows it: a formula would show its result there, so
hostile text that must stay text is checked in that output.
"""
from __future__ import annotations

import re

from tests.factories import DDE, FORMULA, SCRIPT
from tests.integration.report.libreoffice import CSV_FILTER, convert, sheet


def test_calc_opens_every_sheet_and_shows_text_as_text(libreoffice, report_dir, tmp_path):
    convert(libreoffice, report_dir / "report.xlsx", CSV_FILTER, tmp_path)
    names = sorted(p.name for p in tmp_path.glob("report-*.csv"))
    assert names == [f"report-{n}.csv" for n in sorted(["Summary", "Workloads", "Overdue", "Accepted", "Images",
                                                          "Vulnerabilities", "Changes", "Coverage"])]

    vulns = sheet(tmp_path, "Vulnerabilities")
    header = vulns[0]
    rows = [dict(zip(header, r)) for r in vulns[1:]]
    names = {r["Vulnerability"] for r in rows}
    assert {"CVE-2024-0727", "CVE-2022-37434", SCRIPT, "=1+1", "@SUM(A1:A2)"} <= names  # "=1+1" is not 2
    hostile = next(r for r in rows if r["Vulnerability"] == SCRIPT)
    assert (hostile["Package"], hostile["Installed version"], hostile["Fixed by"]) == (DDE, "-1+1", FORMULA)
    openssl = next(r for r in rows if r["Vulnerability"] == "CVE-2024-0727")
    assert (openssl["Severity"], openssl["CVSS"], openssl["Pods"]) == ("Critical", "9.8", "3")

    summary = {r[0]: r[1:] for r in sheet(tmp_path, "Summary") if r}
    assert summary["Pods listed at (UTC)"][0] == "2026-05-04 06:00"  # a date, in the date format
    assert summary["Critical"][0] == "3"
    coverage = sheet(tmp_path, "Coverage")
    assert any("connection refused after 4 retries" in r for r in coverage)


def test_calc_prints_the_workbook(libreoffice, report_dir, tmp_path):
    convert(libreoffice, report_dir / "report.xlsx", "pdf", tmp_path)
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]


def test_calc_keeps_the_advisory_and_registry_links(libreoffice, report_dir, tmp_path):
    # Calc's HTML export writes each hyperlink cell as an anchor: the links a user can click.
    convert(libreoffice, report_dir / "report.xlsx", "html", tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8", errors="replace")
    links = set(re.findall(r'<a href="([^"]*)"', page))
    assert "https://access.redhat.com/security/cve/CVE-2024-0727" in links
    assert any(link.startswith("https://quay.io/repository/shop/web/manifest/sha256:") for link in links)
    assert all(link.startswith("https://") for link in links), links
