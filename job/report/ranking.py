"""The report's view of triage: per workload, its findings ranked, their age, due dates and overdue.

Pure. The rules are job.triage's; this module applies them to the report's workloads, with the
feeds read at the edge (job.feeds) and the first-seen days kept in the previous summary.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

from job.exceptions import Rule
from job.model import SEVERITY_RANK
from job.triage import NO_FEEDS, Feeds, FeedStatus, Finding, cve_ids, finding, iso_day, rank

if TYPE_CHECKING:
    from job.report.previous import Previous
    from job.report.view import FindingKey, SeenByDay, WorkloadItem, WorkloadKey

#: Findings named per workload in the reports' action rows.
TOP = 5


@dataclass(frozen=True, slots=True)
class Triage:
    """What the report ranks with: the feeds as read, and the SLA policy."""

    feeds: Feeds = NO_FEEDS
    sla: Mapping[str, int] = field(default_factory=dict)
    #: Exception entries and VEX statements (job.exceptions); entries this close to their end are "expiring soon".
    rules: tuple[Rule, ...] = ()
    soon_days: int = 14
    vex_documents: int = 0

    @property
    def feed_problems(self) -> tuple[FeedStatus, ...]:
        return tuple(s for s in self.feeds.status if s.problem)


@dataclass(frozen=True, slots=True)
class WorkloadTriage:
    top: tuple[Finding, ...]  # the most urgent findings, first TOP
    overdue: tuple[Finding, ...]  # every overdue finding, the longest overdue first
    findings: int
    kev: int  # findings in the KEV catalogue
    first_due: int  # the earliest due date among its findings (ordinal); 0 when none
    oldest: int  # days the oldest finding has been open
    rank: tuple

    @property
    def first_due_text(self) -> str:
        return iso_day(self.first_due)


_NOTHING = (2,)  # rank of a workload without findings: last


def annotate(workloads: Iterable["WorkloadItem"], findings: Mapping["WorkloadKey", frozenset["FindingKey"]],
             triage: Triage, previous: "Previous | None", *, today: int,
             severity_of: Mapping["FindingKey", str],
             accepted: Mapping["WorkloadKey", frozenset["FindingKey"]] | None = None,
             ) -> dict["WorkloadKey", "SeenByDay"]:
    """Set each workload's triage; return the findings seen before today by the day first seen,
    per workload (what summary.json keeps for the next run). Carried-forward findings keep theirs.
    Accepted findings keep their first-seen day but are not ranked, due nor overdue."""
    cves: dict[FindingKey, tuple[str, ...]] = {}
    older: dict[WorkloadKey, SeenByDay] = {}
    for w in workloads:
        seen = _first_seen(w.key, findings.get(w.key, w.keys), previous, today)
        if seen:
            older[w.key] = _by_day(seen)
        fixable: dict[FindingKey, bool] = {}
        skip = accepted.get(w.key, frozenset()) if accepted else frozenset()
        for image in w.images:
            for f, v in image.entries:
                key = (f.name, v.name)
                if key in skip:
                    continue
                fixable[key] = fixable.get(key, False) or bool(v.fixed_by)
                if key not in cves:
                    cves[key] = cve_ids(f, v)
        items = [finding(p, v, severity_of.get((p, v), "Unknown"), fixable=fix, cves=cves[(p, v)],
                         feeds=triage.feeds, first_seen=seen.get((p, v), today), sla=triage.sla)
                 for (p, v), fix in fixable.items()]
        w.triage = _summarize(items, today)
    return older


def annotate_share(workloads: Iterable["WorkloadItem"], findings: Mapping["WorkloadKey", frozenset["FindingKey"]],
                   triage: Triage, previous: "Previous | None", *, today: int, severity_of: Mapping["FindingKey", str],
                   accepted: Mapping["WorkloadKey", frozenset["FindingKey"]] | None,
                   whole: Mapping["WorkloadKey", tuple[WorkloadTriage | None, "SeenByDay | None"]],
                   whole_severity: Mapping["FindingKey", str]) -> dict["WorkloadKey", "SeenByDay"]:
    """`annotate` for an owner's share: a workload takes the whole report's ranking (`whole`) when its
    findings have the same severities in both (a severity is the highest among the images in view),
    instead of being ranked again for each owner page and mail; the others are ranked here."""
    again, first_seen = [], {}
    for w in workloads:
        known = whole.get(w.key)
        if known is None or any(severity_of.get(k) != whole_severity.get(k) for k in w.keys):
            again.append(w)
            continue
        w.triage = known[0]
        if known[1] is not None:
            first_seen[w.key] = known[1]
    first_seen.update(annotate(again, findings, triage, previous, today=today, severity_of=severity_of,
                               accepted=accepted))
    return first_seen


def _by_day(seen: dict["FindingKey", int]) -> "SeenByDay":
    # A few days a workload, a tuple of keys each: a dict of key to day per workload held
    # ~30 MB at 50,000 pods for as long as the report stage runs.
    days: dict[int, list[FindingKey]] = {}
    for key, day in seen.items():
        days.setdefault(day, []).append(key)
    return {day: tuple(keys) for day, keys in days.items()}


def _first_seen(wkey: "WorkloadKey", keys: Iterable["FindingKey"], previous: "Previous | None",
                today: int) -> dict["FindingKey", int]:
    if previous is None:
        return {}
    had = set(previous.findings.get(wkey, ()))
    if not had:
        return {}
    days = previous.first_seen.get(wkey, {})
    out = {}
    for key in keys:
        i = previous.index.get(key, -1)
        if i >= 0 and i in had:
            day = days.get(i, previous.day)
            if 0 < day < today:
                out[key] = day
    return out


def _summarize(items: list[Finding], today: int) -> WorkloadTriage | None:
    if not items:
        return None
    items.sort(key=rank)
    overdue = sorted((f for f in items if f.overdue(today)), key=lambda f: (f.due, rank(f)))
    dues = [f.due for f in items if f.due]
    return WorkloadTriage(tuple(items[:TOP]), tuple(overdue), len(items), sum(1 for f in items if f.kev),
                          min(dues, default=0), max(f.days_open(today) for f in items), rank(items[0]))


def workload_rank(w: "WorkloadItem") -> tuple:
    return w.triage.rank if w.triage is not None else _NOTHING


def overdue_rows(workloads: Iterable["WorkloadItem"]) -> list[tuple["WorkloadItem", Finding]]:
    """Every overdue finding with its workload, the longest overdue first."""
    rows = [(w, f) for w in workloads if w.triage is not None for f in w.triage.overdue]
    rows.sort(key=lambda r: (r[1].due, rank(r[1]), r[0].namespace, r[0].label))
    return rows


def severity_rank(f: Finding) -> int:
    return SEVERITY_RANK.get(f.severity, 0)
