"""summary.json: the report's machine-readable twin, and the next run's memory.

The schema is documented in docs/summary-schema.md. Readers check `schemaVersion`; a new field is
not a new version, a changed or removed one is. The next run reads it back with job.report.previous.
"""
from __future__ import annotations

from typing import Any

from job import __version__
from job.model import SEVERITIES, SEVERITY_RANK
from job.report.accepted import accepted_doc
from job.report.previous import HISTORY_LENGTH, SCHEMA_VERSION
from job.report.view import Counts, ImageItem, ReportContext
from job.triage import iso_day

_DESC = tuple(reversed(SEVERITIES))


def summary_doc(ctx: ReportContext) -> dict[str, Any]:
    t = ctx.totals
    ch = ctx.changes
    return {
        "schemaVersion": SCHEMA_VERSION,
        "generator": f"imvjob {__version__}",
        "cluster": ctx.cluster,
        "takenAt": ctx.taken_at,
        "source": ctx.source,
        "scope": list(ctx.scope) if ctx.scope is not None else None,
        "headline": ctx.headline,
        "totals": {
            "vulnerabilities": _severities(t.counts.by_severity),
            "total": t.counts.total,
            "fixable": t.counts.fixable,
            "images": {"running": t.images, "scanned": t.scanned, "vulnerable": t.vulnerable,
                       "unscanned": t.unscanned},
            "imagesByHighestSeverity": _severities(t.images_by_highest),
            "imageManifestVulns": t.imv_objects,
            "pods": t.pods,
            "namespaces": t.namespaces,
            "workloads": t.workloads,
            "workloadsAffected": t.workloads_affected,
            "unresolvedContainers": t.unresolved,
            "problems": t.problems,
            "findings": sum(w.triage.findings for w in ctx.workloads if w.triage),
            "exploited": sum(w.triage.kev for w in ctx.workloads if w.triage),
            "overdue": sum(len(w.triage.overdue) for w in ctx.workloads if w.triage),
            "accepted": ctx.accepted.total,
        },
        "triage": _triage(ctx),
        "accepted": accepted_doc(ctx.accepted, _severities),
        "changes": {
            "previousTakenAt": ch.previous_taken_at or None,
            "new": _severities(ch.new_counts.by_severity),
            "newTotal": ch.new_counts.total,
            "resolved": _severities(ch.resolved_counts.by_severity),
            "resolvedTotal": ch.resolved_counts.total,
            "unchecked": ch.unchecked,
            "delta": _severities(ch.delta),
        },
        "namespaces": [
            {**_counts(n.counts), "name": n.name, "owners": list(n.owners), "images": len(n.images),
             "vulnerableImages": n.vulnerable_images, "unscannedImages": n.unscanned,
             "workloads": len(n.workloads), "workloadsAffected": len(n.affected_workloads),
             "overdue": sum(len(w.triage.overdue) for w in n.workloads if w.triage),
             "exploited": sum(w.triage.kev for w in n.workloads if w.triage),
             "accepted": sum(ctx.accepted.by_namespace.get(n.name, ()))}
            for n in ctx.namespaces
        ],
        "images": [_image(i) for i in ctx.images],
        "unscanned": [
            {"image": i.image, "digest": i.digest, "state": i.state, "detail": i.detail,
             "jobError": i.job_error, "namespaces": list(i.namespaces), "pods": len(i.pods)}
            for i in ctx.images if not i.scanned
        ],
        "coverage": [
            {"kind": c.kind, "subject": c.subject, "state": c.state, "detail": c.detail,
             "namespaces": list(c.namespaces), "pods": c.pods, "jobError": c.job_error}
            for c in ctx.coverage if c.kind != "image"
        ],
        "apply": None if ctx.apply is None else {
            "created": ctx.apply.created, "updated": ctx.apply.updated, "deleted": ctx.apply.deleted,
            "unchanged": ctx.apply.unchanged, "kept": ctx.apply.kept, "unmanaged": ctx.apply.unmanaged,
            "failed": ctx.apply.failed, "dryRun": ctx.apply.dry_run, "target": ctx.apply.target},
        "history": [{"takenAt": p.taken_at or ctx.taken_at, "vulnerabilities": _severities(p.by_severity)}
                    for p in ctx.trend[-HISTORY_LENGTH:]],
        "findings": _findings(ctx),
    }


def _triage(ctx: ReportContext) -> dict[str, Any]:
    tri = ctx.triage
    return {
        "today": iso_day(ctx.today),
        "sla": {s: tri.sla[s] for s in _DESC if s in tri.sla},
        "feeds": [{"name": f.name, "source": f.source or None, "state": f.state, "detail": f.detail,
                   "date": f.date or None, "entries": f.entries} for f in tri.feeds.status],
    }


def _severities(by_severity: tuple[int, ...]) -> dict[str, int]:
    return {s: by_severity[SEVERITY_RANK[s]] for s in _DESC}


def _counts(c: Counts) -> dict[str, Any]:
    return {"vulnerabilities": _severities(c.by_severity), "total": c.total, "fixable": c.fixable,
            "highestSeverity": c.highest or None}


def _image(i: ImageItem) -> dict[str, Any]:
    return {"image": i.image, "digest": i.digest, "state": i.state, **_counts(i.counts),
            "namespaces": list(i.namespaces), "workloads": len(i.workloads), "pods": len(i.pods),
            "pageUrl": i.page_url or None}


def _findings(ctx: ReportContext) -> dict[str, Any]:
    """Per workload, the (package, vulnerability) pairs it has, as indexes into one key table."""
    index: dict[tuple[str, str], int] = {}
    workloads = []
    first_seen = []
    for (ns, kind, name), keys in sorted(ctx.findings.items()):
        ids = []
        for key in sorted(keys):  # a set's order changes with each process's string hashes
            i = index.get(key)
            if i is None:
                i = index[key] = len(index)
            ids.append(i)
        older = ctx.first_seen.get((ns, kind, name))
        if older:  # findings seen before this run, grouped by day: a few rows per workload
            first_seen += [[len(workloads), iso_day(day), sorted(index[key] for key in older[day])]
                           for day in sorted(older)]
        workloads.append([ns, kind, name, sorted(ids)])
    severity = ctx.severity_of
    return {"keys": [[p, v, severity.get((p, v), "Unknown")] for p, v in index],
            "workloads": workloads, "firstSeen": first_seen}
