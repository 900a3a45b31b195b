"""The report's view of accepted risk: which findings the exceptions and VEX statements accept.

Pure. A finding (workload × package × vulnerability) is accepted when an entry in force accepts
every image entry it stands for in that workload; then it is left out of the ranking, the action
rows and the overdue list, and listed here instead, with reason, who, until and source. Accepted
findings are counted per namespace and severity, never hidden. The vulnerability counts (the
ImageManifestVulns' unit) stay what the registries say.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

from job.exceptions import Occurrence, Rule, RuleIndex, decide, state
from job.model import SEVERITIES, SEVERITY_RANK
from job.report.text import safe_link
from job.report.vulns import PackageVuln
from job.triage import cve_ids

if TYPE_CHECKING:
    from job.report.view import FindingKey, WorkloadItem, WorkloadKey

_ZERO = (0,) * len(SEVERITIES)
ORIGINS = {"file": "exceptions file", "annotation": "namespace annotation", "vex": "OpenVEX"}


@dataclass(frozen=True, slots=True)
class AcceptedRow(PackageVuln):
    """One accepted finding and the entry that accepts it."""

    namespace: str
    kind: str
    workload: str
    owners: tuple[str, ...]
    image: str
    rule: Rule
    state: str  # "accepted" or "expiring soon"
    days_left: int  # -1 when the entry has no end date

    @property
    def origin(self) -> str:
        return ORIGINS.get(self.rule.origin, self.rule.origin)

    @property
    def ticket(self) -> str:
        return safe_link(self.rule.ticket)


@dataclass(frozen=True, slots=True)
class ExpiredRow:
    """An entry no longer in force (its date passed, or a fix exists), and the findings it matches now."""

    rule: Rule
    findings: int
    why: str

    @property
    def origin(self) -> str:
        return ORIGINS.get(self.rule.origin, self.rule.origin)


@dataclass(frozen=True, slots=True)
class AcceptedView:
    rows: tuple[AcceptedRow, ...] = ()  # most severe first
    expired: tuple[ExpiredRow, ...] = ()
    by_namespace: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # per severity, by SEVERITY_RANK
    keys: Mapping["WorkloadKey", frozenset["FindingKey"]] = field(default_factory=dict)
    entries: int = 0  # entries and statements in force for this run
    vex_documents: int = 0

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def expiring(self) -> tuple[AcceptedRow, ...]:
        return tuple(r for r in self.rows if r.state == "expiring soon")

    @property
    def by_severity(self) -> tuple[int, ...]:
        return tuple(sum(c[i] for c in self.by_namespace.values()) for i in range(len(SEVERITIES)))

    def severity_items(self) -> list[tuple[str, int]]:
        sev = self.by_severity
        return [(s, sev[SEVERITY_RANK[s]]) for s in reversed(SEVERITIES) if sev[SEVERITY_RANK[s]]]

    def namespace_items(self) -> list[tuple[str, list[tuple[str, int]]]]:
        return [(ns, [(s, c[SEVERITY_RANK[s]]) for s in reversed(SEVERITIES) if c[SEVERITY_RANK[s]]])
                for ns, c in sorted(self.by_namespace.items())]

    @property
    def headline_note(self) -> str:
        if not self.rows:
            return ""
        return f"; {self.total:,} finding{'' if self.total == 1 else 's'} accepted (exceptions and VEX)"


def accept(workloads: Iterable["WorkloadItem"], rules: tuple[Rule, ...], *, today: int, soon_days: int,
           severity_of: Mapping["FindingKey", str], everything: bool, vex_documents: int = 0) -> AcceptedView:
    """Which findings of these workloads the rules accept. `everything`: the whole report (every
    expired entry listed), else an owner's share (only the expired entries that concern it)."""
    if not rules:
        return AcceptedView(vex_documents=vex_documents)
    index = RuleIndex(rules)
    rows: list[AcceptedRow] = []
    keys: dict[WorkloadKey, frozenset[FindingKey]] = {}
    by_ns: dict[str, list[int]] = defaultdict(lambda: list(_ZERO))
    lapsed: dict[int, set] = defaultdict(set)  # id(rule) → findings it matches but no longer accepts
    namespaces: set[str] = set()
    for w in workloads:
        namespaces.add(w.namespace)
        chosen: dict[FindingKey, list[tuple[Rule, str, str] | None]] = defaultdict(list)
        for image in w.images:
            for f, v in image.entries:
                o = Occurrence(w.namespace, w.workload.kind, w.workload.name, image.image, image.digest, f.name,
                               f.version, v.name, cve_ids(f, v), bool(v.fixed_by))
                pick = None
                for rule in decide(index, o):
                    if not rule.accepts:
                        continue
                    st = state(rule, today=today, fixable=o.fixable, soon_days=soon_days)
                    if st == "expired":
                        lapsed[id(rule)].add((w.key, f.name, v.name))
                    elif pick is None or (pick[1] == "expiring" and st == "active"):
                        pick = (rule, st, image.image)
                chosen[(f.name, v.name)].append(pick)
        accepted = set()
        for key, picks in chosen.items():
            if not all(picks):
                continue  # an image entry that no entry accepts keeps the finding in the ranking
            accepted.add(key)
            rule, st, image_name = min(picks, key=lambda p: p[1] != "expiring")  # the soonest to end shows
            severity = severity_of.get(key, "Unknown")
            by_ns[w.namespace][SEVERITY_RANK.get(severity, 0)] += 1
            rows.append(AcceptedRow(
                vulnerability=key[1], package=key[0], severity=severity, namespace=w.namespace,
                kind=w.workload.kind, workload=w.workload.name, owners=w.owners, image=image_name, rule=rule,
                state="expiring soon" if st == "expiring" else "accepted",
                days_left=rule.until - today if rule.until > 0 else -1))
        if accepted:
            keys[w.key] = frozenset(accepted)
    rows.sort(key=lambda r: (-SEVERITY_RANK.get(r.severity, 0), r.namespace, r.kind, r.workload, r.vulnerability,
                             r.package))
    expired = _expired(rules, lapsed, today=today, everything=everything, namespaces=namespaces)
    in_force = sum(1 for r in rules if r.accepts and (r.until <= 0 or r.until > today))
    return AcceptedView(tuple(rows), expired, {ns: tuple(c) for ns, c in by_ns.items()}, keys, in_force,
                        vex_documents)


def _expired(rules: tuple[Rule, ...], lapsed: Mapping[int, set], *, today: int, everything: bool,
             namespaces: set[str]) -> tuple[ExpiredRow, ...]:
    from fnmatch import fnmatchcase

    out = []
    for rule in rules:
        hits = len(lapsed.get(id(rule), ()))
        if 0 < rule.until <= today:
            why = f"ended {rule.until_text}"
        elif hits:
            why = "a fix exists"
        else:
            continue
        mine = hits or (rule.namespace and any(fnmatchcase(ns, rule.namespace) for ns in namespaces))
        if everything or mine:
            out.append(ExpiredRow(rule, hits, why))
    out.sort(key=lambda e: (-e.findings, e.rule.until, e.rule.source))
    return tuple(out)



# --- summary.json ---------------------------------------------------------------------------------


def _rule_doc(rule: Rule) -> dict:
    return {"namespace": rule.namespace or None, "workload": rule.workload or None, "image": rule.image or None,
            "package": rule.package or None, "vulnerability": rule.vulnerability or None, "reason": rule.reason,
            "by": rule.by, "until": rule.until_text if rule.until > 0 else ("fixable" if rule.until < 0 else None),
            "ticket": safe_link(rule.ticket) or None, "origin": rule.origin, "source": rule.source,
            "vexStatus": rule.status or None}


def accepted_doc(view: AcceptedView, severities) -> dict:
    """The `accepted` object of summary.json (docs/summary-schema.md); `severities` makes a severity map."""
    return {
        "total": view.total,
        "bySeverity": severities(view.by_severity),
        "expiringSoon": len(view.expiring),
        "entriesInForce": view.entries,
        "vexDocuments": view.vex_documents,
        "namespaces": [{"name": ns, "accepted": severities(c)} for ns, c in sorted(view.by_namespace.items())],
        "findings": [{"namespace": r.namespace, "kind": r.kind, "workload": r.workload, "image": r.image,
                      "package": r.package, "vulnerability": r.vulnerability, "severity": r.severity,
                      "state": r.state, "entry": _rule_doc(r.rule)} for r in view.rows],
        "expired": [{"why": e.why, "findings": e.findings, "entry": _rule_doc(e.rule)} for e in view.expired],
    }
