"""Reports for the people who warn workload owners: HTML, XLSX and summary.json from one context.

`build_context` is pure; `write_reports` is the only writer; `load_previous` reads the last run's
summary.json for "new since last run" and "resolved since last run".
"""
from __future__ import annotations

from pathlib import Path

from job.log import RunLog
from job.model import ApplyOutcome, ImageRef, Problem, ScanResult, Snapshot
from job.report import context as _context
from job.report.previous import SCHEMA_VERSION, Previous, lean_summary, read_previous
from job.report.ranking import Triage
from job.report.view import ReportContext
from job.report.writer import PREVIOUS_FILE, SUMMARY_FILE, read_summary_why, write_reports
from job.settings import Settings

__all__ = ["ReportContext", "Triage", "build_context", "cluster_name", "load_previous", "write_reports"]
cluster_name = _context.cluster_name


def load_previous(path: Path, *, current: Snapshot, log: RunLog | None = None) -> Previous | None:
    """The previous run, from its summary.json, for what is new and resolved; None when there is none.

    `path` is the output folder or a summary.json file. In a folder, a summary.json of this very
    snapshot (a re-render of this run) is skipped for summary.previous.json, the run before. One that
    cannot be used (damaged, edited, of another schema version) is skipped, never a failed run: a
    warning, and a problem in the report saying that the comparison was skipped and why.
    """
    file = path / SUMMARY_FILE if path.is_dir() else path
    doc, why = read_summary_why(file, lean=lean_summary)
    if path.is_dir() and doc is not None and doc.get("takenAt") == current.taken_at:
        file = path / PREVIOUS_FILE
        doc, why = read_summary_why(file, lean=lean_summary)
    previous = None
    if doc is not None:
        version = doc.get("schemaVersion")
        if version != SCHEMA_VERSION:
            shown = str(version)[:20] if isinstance(version, (int, str)) else "none"
            why = f"is of another schema version ({shown}; this imvjob reads {SCHEMA_VERSION})"
        else:
            previous = read_previous(doc)
            why = "" if previous is not None else "is damaged (a field is missing or of the wrong type)"
            if previous is not None and previous.first_seen_problem:
                message = f"{file}: {previous.first_seen_problem}"
                current.problems.append(Problem("previous run", message))
                if log is not None:
                    log.warn(f"previous run: {message}")
    if why:
        message = f"{file} {why}: comparison skipped, nothing is shown as new or resolved since then"
        current.problems.append(Problem("previous run", message))
        if log is not None:
            log.warn(f"previous run: {message}")
    return previous


def build_context(*, snapshot: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome | None,
                  previous: Previous | dict | None, settings: Settings, triage: Triage | None = None,
                  ) -> ReportContext:
    """triage: the feeds and SLA policy to rank with; None: no feeds, the policy of the settings."""
    return _context.build(snapshot=snapshot, results=results, outcome=outcome, previous=previous,
                          settings=settings, triage=triage)
