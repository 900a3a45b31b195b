"""summary.json: the report's machine-readable twin, and the next run's memory.

The schema is documented in docs/summary-schema.md. Readers check `schemaVersion`; a new field is
not a new version, a changed or removed one is.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from job import __version__
from job.model import SEVERITIES, SEVERITY_RANK
from job.report.accepted import accepted_doc
from job.triage import day_of, iso_day

if TYPE_CHECKING:
    from job.report.context import Counts, ImageItem, ReportContext

SCHEMA_VERSION = 1
#: Runs kept in "history" for the trend chart, the current one included.
HISTORY_LENGTH = 12
_DESC = tuple(reversed(SEVERITIES))
_SEVERITY_NAMES = {s: s for s in SEVERITIES}  # one string object per severity, however many findings


def summary_doc(ctx: "ReportContext") -> dict[str, Any]:
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


def _triage(ctx: "ReportContext") -> dict[str, Any]:
    tri = ctx.triage
    return {
        "today": iso_day(ctx.today),
        "sla": {s: tri.sla[s] for s in _DESC if s in tri.sla},
        "feeds": [{"name": f.name, "source": f.source or None, "state": f.state, "detail": f.detail,
                   "date": f.date or None, "entries": f.entries} for f in tri.feeds.status],
    }


def _severities(by_severity: tuple[int, ...]) -> dict[str, int]:
    return {s: by_severity[SEVERITY_RANK[s]] for s in _DESC}


def _counts(c: "Counts") -> dict[str, Any]:
    return {"vulnerabilities": _severities(c.by_severity), "total": c.total, "fixable": c.fixable,
            "highestSeverity": c.highest or None}


def _image(i: "ImageItem") -> dict[str, Any]:
    return {"image": i.image, "digest": i.digest, "state": i.state, **_counts(i.counts),
            "namespaces": list(i.namespaces), "workloads": len(i.workloads), "pods": len(i.pods),
            "pageUrl": i.page_url or None}


def _findings(ctx: "ReportContext") -> dict[str, Any]:
    """Per workload, the (package, vulnerability) pairs it has, as indexes into one key table."""
    index: dict[tuple[str, str], int] = {}
    workloads = []
    first_seen = []
    for (ns, kind, name), keys in sorted(ctx.findings.items()):
        ids = []
        for key in keys:
            i = index.get(key)
            if i is None:
                i = index[key] = len(index)
            ids.append(i)
        older = ctx.first_seen.get((ns, kind, name))
        if older:  # findings seen before this run, grouped by day: a few rows per workload
            by_day: dict[int, list[int]] = {}
            for key, day in older.items():
                by_day.setdefault(day, []).append(index[key])
            first_seen += [[len(workloads), iso_day(day), sorted(by_day[day])] for day in sorted(by_day)]
        workloads.append([ns, kind, name, sorted(ids)])
    severity = ctx.severity_of
    return {"keys": [[p, v, severity.get((p, v), "Unknown")] for p, v in index],
            "workloads": workloads, "firstSeen": first_seen}


# --- reading the previous run --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Previous:
    """The previous run, compactly: a table of (package, vulnerability) keys, and per workload the
    positions of its keys in that table (a large cluster has close to a million of them)."""

    taken_at: str
    keys: list[tuple[str, str]]
    severities: list[str]  # of each key
    index: dict[tuple[str, str], int]  # key → position
    findings: dict[tuple[str, str, str], array]  # (namespace, kind, name) → positions
    history: tuple[tuple[str, tuple[int, ...]], ...]
    images: tuple[tuple[frozenset[str], tuple[int, ...]], ...]  # (namespaces, counts) per image
    #: Per workload, {key position: day first seen} of findings older than that run; the others
    #: were first seen on `day`, that run's day.
    first_seen: dict[tuple[str, str, str], dict[int, int]] = field(default_factory=dict)
    day: int = 0
    #: Why the first-seen days could not be read ('' when they could): they start afresh.
    first_seen_problem: str = ""

    def totals_for(self, namespaces: frozenset[str]) -> tuple[int, ...]:
        """The previous run's totals over the images that ran in any of these namespaces."""
        sev = [0] * len(SEVERITIES)
        for ns, counts in self.images:
            if ns & namespaces:
                for i, n in enumerate(counts):
                    sev[i] += n
        return tuple(sev)


def read_previous(doc: "dict | Previous | None") -> Previous | None:
    """The parts of a previous summary.json the next report needs; None when unusable."""
    if isinstance(doc, Previous):  # read already (job.report.load_previous)
        return doc
    if not isinstance(doc, dict) or doc.get("schemaVersion") != SCHEMA_VERSION:
        return None
    try:
        table = doc["findings"]["keys"]
        keys = [(str(p), str(v)) for p, v, _sev in table]
        severities = [_SEVERITY_NAMES.get(s, "Unknown") for _p, _v, s in table]
        findings = {}
        for ns, kind, name, ids in doc["findings"]["workloads"]:
            positions = array("I", ids)
            if positions and max(positions) >= len(keys):
                return None
            findings[(str(ns), str(kind), str(name))] = positions
        history = tuple((str(h["takenAt"]), _by_severity(h["vulnerabilities"])) for h in doc.get("history", ()))
        if not history:
            history = ((str(doc["takenAt"]), _by_severity(doc["totals"]["vulnerabilities"])),)
        images = tuple((frozenset(map(str, i["namespaces"])), _by_severity(i["vulnerabilities"]))
                       for i in doc.get("images", ()))
        index = {key: i for i, key in enumerate(keys)}
        workload_keys = list(findings)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError, RecursionError):
        return None  # damaged or edited by hand: no comparison rather than a failed run
    first_seen, problem = _read_first_seen(doc["findings"].get("firstSeen", []), workload_keys, findings, len(keys))
    return Previous(str(doc["takenAt"]), keys, severities, index, findings, history, images, first_seen,
                    day_of(str(doc["takenAt"])), problem)


def _read_first_seen(rows: Any, workloads: list, findings: dict, nkeys: int) -> tuple[dict, str]:
    """findings.firstSeen: [[workload position, "YYYY-MM-DD", [key position, ...]], ...]. Damaged: start
    afresh (every earlier finding counts as first seen at that run), with a reason to warn about."""
    out: dict[tuple[str, str, str], dict[int, int]] = {}
    try:
        if not isinstance(rows, list):
            raise TypeError
        for w, date, ids in rows:
            day = day_of(date) if isinstance(date, str) else 0
            if day <= 0 or not isinstance(w, int) or isinstance(w, bool) or w < 0 or not isinstance(ids, list):
                raise ValueError
            days = out.setdefault(workloads[w], {})
            for i in ids:
                if not isinstance(i, int) or not 0 <= i < nkeys:
                    raise ValueError
                days[i] = day
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return {}, "its first-seen days are damaged: earlier findings count from that run"
    return out, ""


def _by_severity(counts: dict[str, Any]) -> tuple[int, ...]:
    return tuple(_count(counts.get(s, 0)) for s in SEVERITIES)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("not a count")
    return value
