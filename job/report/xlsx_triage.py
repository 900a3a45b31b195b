"""The workbook's triage rows: the Overdue sheet, and the feeds and deadlines on the Summary sheet.

Kept apart from job.report.xlsx, which owns the sheets; these functions fill one they are given.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Iterable

from job.triage import Feeds, Finding, cve_ids

if TYPE_CHECKING:
    from job.report.view import ReportContext

OVERDUE_COLUMNS = [("Due", 12), ("Days overdue", 10), ("Days open", 10), ("Severity", 12), ("Namespace", 22),
                   ("Kind", 13), ("Workload", 30), ("Vulnerability", 22), ("CVEs", 30), ("Flags", 22),
                   ("EPSS", 8), ("Package", 24), ("Fixable", 8), ("First seen", 12), ("Owners", 30)]


def day_date(ordinal: int) -> dt.datetime | None:
    return dt.datetime.combine(dt.date.fromordinal(ordinal), dt.time()) if ordinal > 0 else None


def findings_text(findings: Iterable[Finding]) -> str:
    """'CVE-2021-44228 [KEV, ransomware]; CVE-2024-0001 [EPSS 42%]': the findings to fix first."""
    parts = []
    for f in findings:
        name = f.kev_cve or (f.cves[0] if f.cves else f.vulnerability)
        parts.append(name + (f" [{', '.join(f.flags)}]" if f.flags else ""))
    return "; ".join(parts)


def overdue_rows(sheet: Any, ctx: "ReportContext") -> None:
    today = ctx.today
    rows = ctx.overdue
    if not rows:
        sheet.append([None, None, None, None, None, None, None, "No finding is past its due date"])
    for w, f in rows:
        sheet.append([
            sheet.date(day_date(f.due)), today - f.due, f.days_open(today), sheet.severity(f.severity), w.namespace,
            w.workload.kind, w.workload.name, f.vulnerability, ", ".join(f.cves), ", ".join(f.flags),
            round(f.epss, 5) if f.epss >= 0 else None, f.package, "yes" if f.fixable else "no",
            sheet.date(day_date(f.first_seen)), ", ".join(w.owners)])


def triage_rows(sheet: Any, ctx: "ReportContext") -> None:
    """Summary lines: deadlines, overdue and exploited counts, and each feed's state."""
    tri = ctx.triage
    add = sheet.append
    add([])
    add([sheet.bold("Fix first, by when")])
    findings = sum(w.triage.findings for w in ctx.workloads if w.triage)
    add(["Findings (workload × vulnerability)", findings])
    add(["  exploited in the wild (CISA KEV)", sum(w.triage.kev for w in ctx.workloads if w.triage)])
    add(["  overdue (sheet Overdue)", len(ctx.overdue)])
    add(["Accepted findings (sheet Accepted)", ctx.accepted.total])
    add(["  expiring soon", len(ctx.accepted.expiring)])
    policy = ", ".join(f"{s} {d} days" for s, d in tri.sla.items()) or "none set"
    add(["Deadlines from first seen", policy + "; a KEV due date when sooner"])
    for f in tri.feeds.status:
        add([f"{f.name} feed", "; ".join(x for x in (f.state, f"of {f.date}" if f.date else "", f.detail, f.source)
                                         if x)])


def vulnerability_signals(feeds: Feeds):
    """A function giving one vulnerability entry's cells: CVEs, KEV due date, ransomware use, EPSS."""
    def cells(sheet: Any, feature: Any, vuln: Any) -> list[Any]:
        cves = cve_ids(feature, vuln)
        kev = next((feeds.kev[c] for c in cves if c in feeds.kev), None)
        epss = max((feeds.epss[c] for c in cves if c in feeds.epss), default=None)
        return [", ".join(cves) or None, sheet.date(day_date(kev.due)) if kev and kev.due else ("yes" if kev else None),
                ("yes" if kev.ransomware else "no") if kev else None, epss]
    return cells
