"""The workbook's Accepted sheet: every accepted finding with its entry, then the expired entries.

Kept apart from job.report.xlsx, which owns the sheets; this fills one it is given.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from job.report.xlsx_triage import day_date

if TYPE_CHECKING:
    from job.report.view import ReportContext

ACCEPTED_COLUMNS = [("State", 14), ("Severity", 12), ("Namespace", 22), ("Kind", 13), ("Workload", 30),
                    ("Image", 40), ("Package", 24), ("Vulnerability", 22), ("Reason", 50), ("By", 26),
                    ("Until", 12), ("Ticket", 30), ("Source", 22), ("Entry", 50), ("Findings now shown", 10)]


def accepted_rows(sheet: Any, ctx: "ReportContext") -> None:
    acc = ctx.accepted
    if not acc.rows and not acc.expired:
        sheet.append(["none", None, None, None, None, None, None, None,
                      "no exception or VEX statement accepts a finding of this report"])
    for r in acc.rows:
        sheet.append([r.state, sheet.severity(r.severity), r.namespace, r.kind, r.workload, r.image, r.package,
                      r.vulnerability, r.rule.reason, r.rule.by, _until(sheet, r.rule),
                      sheet.link(r.ticket) if r.ticket else None, r.origin, r.rule.source, None])
    for e in acc.expired:
        rule = e.rule
        sheet.append([f"expired: {e.why}", None, rule.namespace, None, rule.workload, rule.image, rule.package,
                      rule.vulnerability, rule.reason, rule.by, _until(sheet, rule), None, e.origin, rule.source,
                      e.findings])


def _until(sheet: Any, rule: Any) -> Any:
    return sheet.date(day_date(rule.until)) if rule.until > 0 else rule.until_text
