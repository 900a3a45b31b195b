"""Reports for the people who warn workload owners: HTML, XLSX and summary.json from one context.

`build_context` is pure; `write_reports` is the only writer; `load_previous` reads the last run's
summary.json for "new since last run" and "resolved since last run".
"""
from __future__ import annotations

from pathlib import Path

from job.model import ApplyOutcome, ImageRef, ScanResult, Snapshot
from job.report import context as _context
from job.report.context import ReportContext
from job.report.summary import SCHEMA_VERSION
from job.report.writer import PREVIOUS_FILE, SUMMARY_FILE, read_summary, write_reports
from job.settings import Settings

__all__ = ["ReportContext", "build_context", "load_previous", "write_reports"]


def load_previous(path: Path, *, current: Snapshot) -> dict | None:
    """The previous run's summary.json, or None (missing, unreadable, another schema version).

    `path` is the output folder or a summary.json file. In a folder, a summary.json of this very
    snapshot (a re-render of this run) is skipped for summary.previous.json, the run before.
    """
    if path.is_dir():
        doc = read_summary(path / SUMMARY_FILE)
        if doc is not None and doc.get("takenAt") == current.taken_at:
            doc = read_summary(path / PREVIOUS_FILE)
    else:
        doc = read_summary(path)
    if doc is None or doc.get("schemaVersion") != SCHEMA_VERSION:
        return None
    return doc


def build_context(*, snapshot: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome | None,
                  previous: dict | None, settings: Settings) -> ReportContext:
    return _context.build(snapshot=snapshot, results=results, outcome=outcome, previous=previous,
                          settings=settings)
