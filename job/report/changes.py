"""Pure: what changed since the previous run (new and resolved findings) and the trend of the totals.

The previous run is job.report.previous's reading of its summary.json.
"""
from __future__ import annotations

from job.model import SEVERITIES, SEVERITY_RANK
from job.report.previous import HISTORY_LENGTH, Previous
from job.report.view import (Change, Changes, Counts, FindingKey, Totals, TrendPoint, WorkloadItem, WorkloadKey,
                             change_order)


def changes_since(workloads: list[WorkloadItem], prev: Previous | None, severity_of: dict[FindingKey, str],
                  *, scope: tuple[str, ...] | None, only: frozenset[str] | None,
                  ) -> tuple[Changes, dict[WorkloadKey, frozenset[FindingKey]]]:
    """What is new in each workload since the previous run (set on its new_keys) and what was
    resolved; and the findings per workload for the next run, those not rechecked now carried on."""
    findings = {w.key: w.keys for w in workloads if w.keys}
    if prev is None:
        return Changes("", Counts(), (), Counts(), 0, (), severity_of), findings

    new_sev = [0] * len(SEVERITIES)
    with_new = []
    for w in workloads:
        had = set(prev.findings.get(w.key, ()))
        new_keys = [key for key in w.keys if prev.index.get(key, -1) not in had]
        if new_keys:
            w.new_keys = tuple(sorted(new_keys))
            with_new.append(w)
            for key in new_keys:
                new_sev[SEVERITY_RANK.get(severity_of.get(key, "Unknown"), 0)] += 1

    current = {w.key: w for w in workloads}
    resolved: list[Change] = []
    unchecked = 0
    for wkey, prev_ids in prev.findings.items():
        ns, kind, name = wkey
        if (only is not None and ns not in only) or (scope is not None and ns not in scope):
            continue  # not looked at this time
        w = current.get(wkey)
        now = {prev.index.get(key, -1) for key in w.keys} if w is not None else set()
        gone = [i for i in prev_ids if i not in now]
        if w is not None and not w.complete:
            unchecked += len(gone)
            if gone:
                findings[wkey] = w.keys | {prev.keys[i] for i in gone}
            continue
        note = "workload no longer running" if w is None else ""
        for i in gone:
            package, vuln = prev.keys[i]
            resolved.append(Change(ns, f"{kind}/{name}", package, vuln, prev.severities[i], note=note))
    resolved.sort(key=change_order)
    resolved_sev = [0] * len(SEVERITIES)
    for c in resolved:
        resolved_sev[SEVERITY_RANK.get(c.severity, 0)] += 1
    changes = Changes(prev.taken_at, Counts(tuple(new_sev)), tuple(resolved), Counts(tuple(resolved_sev)),
                      unchecked, tuple(with_new), severity_of)
    return changes, findings


def trend(prev: Previous | None, totals: Totals, only: frozenset[str] | None) -> tuple[TrendPoint, ...]:
    """The totals of the previous runs (of these namespaces: only the last run's), oldest first, then now's."""
    now = TrendPoint("", totals.counts.by_severity, current=True)
    if prev is None:
        return (now,)
    if only is None:
        points = [TrendPoint(t, sev) for t, sev in prev.history]
    else:
        points = [TrendPoint(prev.taken_at, prev.totals_for(only))]
    return tuple(points[-(HISTORY_LENGTH - 1):]) + (now,)
