"""Fix first, by when: what a person sees of ranking, deadlines and feeds in Chromium and in the workbook."""
from __future__ import annotations

import openpyxl

from job.report import write_reports
from tests.integration.report.browser import Server, Text, browse, png_size
from tests.integration.report.libreoffice import CSV_FILTER, convert, sheet
from tests.triage_run import triage_context


def test_the_page_opens_with_what_is_overdue_and_ranks_exploited_findings_first(chromium, tmp_path):
    ctx, out = triage_context(tmp_path)
    write_reports(ctx, out)
    with Server(out) as server:
        url = f"{server.origin}/report.html"
        dom, requests = browse(chromium, url, tmp_path, "--dump-dom")
        shot = tmp_path / "top.png"
        browse(chromium, url, tmp_path, f"--screenshot={shot}", "--window-size=1280,1200")
    assert requests == [] and png_size(shot) == (1280, 1200)

    words = Text(dom).words
    # The stale EPSS feed is said before anything else; then the Overdue section, before the summary.
    section, actions_at = words.index("Overdue 3 3 findings"), words.index("What to do Each affected")
    assert words.index("EPSS feed stale: 33 days old") < section < words.index("Vulnerabilities by severity")
    overdue = words[section:words.index("Vulnerabilities by severity")]
    # The longest overdue first: Critical due April 8, the KEV due date of April 20, High due May 1.
    assert overdue.index("CVE-2024-0727") < overdue.index("CVE-2023-4911") < overdue.index("CVE-2023-38545")
    assert "2026-04-20 overdue 14 days (KEV)" in overdue and "33 days" in overdue
    actions = words[actions_at:words.index("New and resolved since")]
    # KEV with known ransomware use first (a Medium), then KEV, then by severity.
    assert actions.index("StatefulSet/db") < actions.index("Deployment/api") < actions.index("Deployment/web")
    assert "CVE-2021-44228 KEV ransomware EPSS 94% due 2026-05-30 (KEV)" in actions
    assert "KEV feed ok · of 2026-05-03 · 2 entries" in words
    # One target version per package, and which findings a newer base image fixes.
    assert "openssl 3.0.1 → 3.0.13 fixes 2" in actions
    assert "2 of 3 are in the base image: rebuild from a newer base" in actions
    # What to rebuild: the image as the pod spec wrote it, its containers, its registry page.
    assert "quay.io/shop/web:latest in c0 · registry page" in actions
    links = [a.get("href") for t, a in Text(dom).tags if t == "a"]
    assert any(h and h.startswith("https://quay.io/repository/shop/web/manifest/sha256:") for h in links)


def test_the_workbook_sorts_by_rank_and_lists_every_overdue_finding(libreoffice, tmp_path):
    ctx, out = triage_context(tmp_path)
    write_reports(ctx, out)
    wb = openpyxl.load_workbook(out / "report.xlsx")
    rows = list(wb["Workloads"].iter_rows(values_only=True))
    head = rows[0]
    work = [dict(zip(head, r)) for r in rows[1:]]
    assert [w["Workload"] for w in work] == ["db", "api", "web"]
    assert work[0]["Fix first"] == "CVE-2021-44228 [KEV, ransomware, EPSS 94%]"
    assert (work[1]["Overdue"], work[2]["Overdue"], work[2]["Oldest open (days)"]) == (1, 2, 33)
    assert work[2]["Update to (fixed-by)"] == "openssl 3.0.1 → 3.0.13, fixes 2; curl 7.61.1 → 7.61.1-34, fixes 1"
    assert work[2]["In the base image"] == "2 of 3"
    assert work[2]["Rebuild (image as written: containers)"] == "quay.io/shop/web:latest: c0"

    overdue = list(wb["Overdue"].iter_rows(values_only=True))
    assert [(r[7], r[1]) for r in overdue[1:]] == [("CVE-2024-0727", 26), ("CVE-2023-4911", 14),
                                                  ("CVE-2023-38545", 3)]
    assert overdue[2][9] == "KEV"
    vulns = list(wb["Vulnerabilities"].iter_rows(values_only=True))
    by_name = {r[1]: dict(zip(vulns[0], r)) for r in vulns[1:]}
    log4j = by_name["CVE-2021-44228"]
    assert (log4j["CVEs"], str(log4j["KEV due"])[:10], log4j["Known ransomware use"], log4j["EPSS"]) == \
        ("CVE-2021-44228", "2026-05-30", "yes", 0.94)
    assert (by_name["CVE-2024-0727"]["KEV due"], by_name["CVE-2024-0727"]["EPSS"]) == (None, 0.003)
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["  overdue (sheet Overdue)"] == 3 and summary["  exploited in the wild (CISA KEV)"] == 2
    assert summary["EPSS feed"].startswith("stale; of 2026-04-01; 33 days old")

    convert(libreoffice, out / "report.xlsx", CSV_FILTER, tmp_path)
    calc = sheet(tmp_path, "Overdue")
    assert calc[1][:3] == ["2026-04-08 00:00", "26", "33"]  # the due date is a date in Calc too
