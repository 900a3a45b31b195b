"""Accepted risk as a person sees it: the page in Chromium and the workbook in openpyxl and LibreOffice
list the accepted findings with reason, who, until and source; entry text stays inert."""
from __future__ import annotations

import openpyxl

from job.report import write_reports
from tests.accepted_run import FORMULA, SCRIPT, accepted_context
from tests.integration.report.browser import Server, Text, browse
from tests.integration.report.libreoffice import CSV_FILTER, convert, sheet


def test_the_page_lists_accepted_findings_apart_and_they_are_not_overdue(chromium, tmp_path):
    ctx, out = accepted_context(tmp_path)
    write_reports(ctx, out)
    with Server(out) as server:
        dom, requests = browse(chromium, f"{server.origin}/report.html", tmp_path, "--dump-dom")
    assert requests == []
    text = Text(dom)
    words = text.words
    assert "2 findings accepted (exceptions and VEX)" in words.split(" Pods listed")[0]  # the headline
    assert "<title>" in dom and "pwned" not in dom.split("</title>")[0]  # the entry's script never ran
    overdue = words[words.index("Overdue 2 2 findings"):words.index("Vulnerabilities by severity")]
    assert "CVE-2024-0727" not in overdue and "CVE-2023-4911" in overdue  # accepted; expired entry: due again
    accepted = words[words.index("Accepted 2 2 findings"):words.index("By owner and namespace")]
    assert "Namespace Accepted payments Medium 1 shop Critical 1" in accepted  # per namespace and severity
    assert "Expiring soon: 1 finding" in accepted and "Expired entries: 1" in accepted
    assert "glibc tunables are not reachable alice@example.com expired ended 2026-05-01" in accepted
    assert f"CVE-2024-0727 openssl {SCRIPT} tickets.example {FORMULA} 2026-05-12 expiring soon: 8 days left" \
        in accepted
    assert ("CVE-2021-44228 log4j-core not affected: component not present (the JNDI lookup class is removed "
            "from the jar) Shop security <security@shop.example> no end date OpenVEX") in accepted
    assert "1 VEX document read" in accepted
    assert ("a", {"href": "https://tickets.example/SEC-7", "rel": "noopener noreferrer"}) in text.tags
    assert not any(tag == "script" and "pwned" in str(attrs) for tag, attrs in text.tags)
    nav = [a.get("href") for t, a in text.tags if t == "a"]
    assert "#accepted" in nav


def test_the_workbook_has_an_accepted_sheet_whose_text_stays_text(libreoffice, tmp_path):
    ctx, out = accepted_context(tmp_path)
    write_reports(ctx, out)
    wb = openpyxl.load_workbook(out / "report.xlsx")
    rows = list(wb["Accepted"].iter_rows(values_only=True))
    head = rows[0]
    got = [dict(zip(head, r)) for r in rows[1:]]
    assert [(r["State"], r["Namespace"], r["Vulnerability"]) for r in got] == [
        ("expiring soon", "shop", "CVE-2024-0727"), ("accepted", "payments", "CVE-2021-44228"),
        ("expired: ended 2026-05-01", "shop", "CVE-2023-4911")]
    web = got[0]
    assert (web["Reason"], web["By"], str(web["Until"])[:10], web["Ticket"], web["Source"]) == \
        (SCRIPT, FORMULA, "2026-05-12", "https://tickets.example/SEC-7", "exceptions file")
    assert wb["Accepted"].cell(2, 10).data_type == "s"  # the formula-looking name is a string
    assert (got[1]["Until"], got[1]["Source"]) == ("no end date", "OpenVEX")
    assert got[2]["Findings now shown"] == 1
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Accepted findings (sheet Accepted)"] == 2 and summary["  expiring soon"] == 1

    convert(libreoffice, out / "report.xlsx", CSV_FILTER, tmp_path)
    calc = sheet(tmp_path, "Accepted")
    assert calc[1][9] == FORMULA and calc[1][8] == SCRIPT  # shown as written, never evaluated
    assert calc[1][10] == "2026-05-12 00:00"
