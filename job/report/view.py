"""The report's view model: the dataclasses every renderer (HTML, XLSX, summary.json, mail, chat,
metrics) reads, and the few pure queries over them. job.report.context builds them; the
vulnerability table's grouping is job.report.groups.

Counting follows the ImageManifestVuln rules: vulnerability *entries* of a manifest's vulnerable
packages, per severity; "fixable" entries have a fixed-by version. A manifest is counted once in
the cluster totals however many namespaces run it; a namespace's totals count the manifests that
run in it (the sum of its ImageManifestVulns).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from job.model import SEVERITIES, SEVERITY_RANK, Feature, ImageRef, ScanState, Snapshot, Vulnerability, Workload
from job.report import ranking
from job.report.accepted import AcceptedView
from job.report.fixes import Fix
from job.report.formats import signed
from job.report.ranking import Triage, WorkloadTriage
from job.triage import Finding

#: State of a running manifest that has no scan result at all (another shard's, or no scan ran).
NO_RESULT = "no result"
#: Severities from the most to the least urgent, the order every view lists them in.
SEVERITIES_DESC: tuple[str, ...] = tuple(reversed(SEVERITIES))
_ZERO = (0,) * len(SEVERITIES)

# (package name, vulnerability name): what "the same vulnerability" is across runs, with the
# workload it is found in. Digest and installed version are left out on purpose: a rebuilt
# image that still ships the flaw in the same package is not a new finding.
FindingKey = tuple[str, str]
WorkloadKey = tuple[str, str, str]  # (namespace, kind, name)
#: A workload's findings seen before this run: first-seen day (a date ordinal) → their keys.
SeenByDay = dict[int, tuple[FindingKey, ...]]
Entry = tuple[Feature, Vulnerability]


@dataclass(frozen=True, slots=True)
class Counts:
    """Vulnerability entries per severity (indexed by SEVERITY_RANK) and how many are fixable."""

    by_severity: tuple[int, ...] = _ZERO
    fixable: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_severity)

    @property
    def highest(self) -> str:
        """The highest severity present, '' when there is none."""
        for rank in range(len(SEVERITIES) - 1, -1, -1):
            if self.by_severity[rank]:
                return SEVERITIES[rank]
        return ""

    def of(self, severity: str) -> int:
        return self.by_severity[SEVERITY_RANK[severity]]

    def at_least(self, severity: str) -> int:
        return sum(self.by_severity[SEVERITY_RANK[severity]:])

    def items(self) -> list[tuple[str, int]]:
        """(severity, count), most severe first."""
        return [(s, self.by_severity[SEVERITY_RANK[s]]) for s in SEVERITIES_DESC]

    @staticmethod
    def add(many: Iterable["Counts"]) -> "Counts":
        sev = list(_ZERO)
        fixable = 0
        for c in many:
            fixable += c.fixable
            for i, n in enumerate(c.by_severity):
                sev[i] += n
        return Counts(tuple(sev), fixable)


@dataclass(slots=True, eq=False)
class ImageItem:
    """One running manifest: its scan state, its vulnerability entries and where it runs."""

    ref: ImageRef
    state: str  # a ScanState value, or NO_RESULT
    detail: str
    backend: str
    page_url: str  # the registry's page for this manifest; http(s) only, else ''
    entries: tuple[Entry, ...]  # most severe first
    counts: Counts
    fixes: tuple[Fix, ...]
    keys: frozenset[FindingKey]
    namespaces: tuple[str, ...]
    workloads: tuple[tuple[str, Workload], ...]
    pods: tuple[str, ...]  # "namespace/pod"
    job_error: bool
    #: Entries whose package came with the base image's layer; -1 when the registry does not say.
    base_entries: int = -1

    @property
    def scanned(self) -> bool:
        return self.state == ScanState.SCANNED.value

    @property
    def image(self) -> str:
        return self.ref.image

    @property
    def digest(self) -> str:
        return self.ref.digest


@dataclass(slots=True, eq=False)
class WorkloadItem:
    """One workload in one namespace: the images its pods run, and what would fix them."""

    namespace: str
    workload: Workload
    owners: tuple[str, ...]
    pods: tuple[str, ...]  # pod names
    images: tuple[ImageItem, ...]
    unresolved: int  # containers whose image manifest is unknown
    counts: Counts
    fixes: tuple[Fix, ...]
    keys: frozenset[FindingKey]
    new_keys: tuple[FindingKey, ...] = ()
    #: Its findings ranked, their age and deadlines (job.report.ranking); None without findings.
    triage: WorkloadTriage | None = None
    #: Per image: the references as the pod specs wrote them, and the containers running it.
    written: dict[ImageRef, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    def rebuild(self, image: ImageItem) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(image references as written, container names) of one of its images: what to rebuild."""
        return self.written.get(image.ref, ((image.image,), ()))

    @property
    def key(self) -> WorkloadKey:
        return (self.namespace, self.workload.kind, self.workload.name)

    @property
    def label(self) -> str:
        return str(self.workload)

    @property
    def unscanned(self) -> tuple[ImageItem, ...]:
        return tuple(i for i in self.images if not i.scanned)

    @property
    def complete(self) -> bool:
        """Every image of the workload was scanned: what is absent now is really gone."""
        return self.unresolved == 0 and all(i.scanned for i in self.images)

    @property
    def unfixed(self) -> int:
        return self.counts.total - self.counts.fixable

    @property
    def base_hint(self) -> tuple[int, int]:
        """(entries in the base image's layer, entries) over the images whose registry tells layers."""
        told = [i for i in self.images if i.base_entries >= 0]
        return sum(i.base_entries for i in told), sum(i.counts.total for i in told)


@dataclass(slots=True, eq=False)
class NamespaceItem:
    name: str
    owners: tuple[str, ...]
    workloads: tuple[WorkloadItem, ...]
    images: tuple[ImageItem, ...]  # distinct manifests running here
    counts: Counts  # the sum of this namespace's ImageManifestVulns

    @property
    def vulnerable_images(self) -> int:
        return sum(1 for i in self.images if i.counts.total)

    @property
    def unscanned(self) -> int:
        return sum(1 for i in self.images if not i.scanned)

    @property
    def unresolved(self) -> int:
        return sum(w.unresolved for w in self.workloads)

    @property
    def affected_workloads(self) -> tuple[WorkloadItem, ...]:
        return tuple(w for w in self.workloads if w.counts.total)


@dataclass(slots=True, eq=False)
class OwnerGroup:
    """Namespaces that share the same owners (the same people get the same mail)."""

    owners: tuple[str, ...]  # () for namespaces nobody owns
    namespaces: tuple[NamespaceItem, ...]
    counts: Counts  # distinct manifests across these namespaces

    @property
    def affected_workloads(self) -> int:
        return sum(len(n.affected_workloads) for n in self.namespaces)


@dataclass(frozen=True, slots=True)
class CoverageItem:
    """Something the report cannot vouch for: an image not scanned, a container whose image is
    unknown, a pod skipped, an owner address rejected, an object not written."""

    kind: str  # "image", "container", "pod", "owner", "object"
    subject: str
    state: str
    detail: str
    namespaces: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()  # "namespace/Kind/name"
    pods: int = 0
    job_error: bool = False  # the job's own making or reach, not the registry's side


@dataclass(frozen=True, slots=True)
class Change:
    """A vulnerability that appeared in, or disappeared from, a workload since the previous run."""

    namespace: str
    workload: str  # "Kind/name"
    package: str
    vulnerability: str
    severity: str
    image: str = ""
    note: str = ""


@dataclass(slots=True, eq=False)
class Changes:
    previous_taken_at: str  # '' when there is no previous run to compare with
    new_counts: Counts
    resolved: tuple[Change, ...]
    resolved_counts: Counts
    #: Findings of the previous run that could not be rechecked (their workload's images were
    #: not all scanned now): neither new nor resolved, carried to the next run.
    unchecked: int
    _by_workload: tuple[WorkloadItem, ...] = ()
    _severity: dict[FindingKey, str] = field(default_factory=dict)
    #: Vulnerabilities (the totals' unit: entries of the scanned images) now minus at the previous
    #: run, per severity: the change the headline, cards and mail show. Not new minus resolved,
    #: which count findings (workload × vulnerability).
    delta: tuple[int, ...] = _ZERO

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_taken_at)

    def delta_items(self) -> list[tuple[str, int]]:
        """(severity, change) where it changed, most severe first."""
        return [(s, self.delta[SEVERITY_RANK[s]]) for s in SEVERITIES_DESC if self.delta[SEVERITY_RANK[s]]]

    def delta_text(self) -> str:
        """'Critical −5, High +1'; 'no change'."""
        return ", ".join(f"{s} {signed(n)}" for s, n in self.delta_items()) or "no change"

    def new(self, limit: int | None = None) -> list[Change]:
        """New findings, most severe first; the first `limit` of them when given."""
        rows = self._iter_new()
        if limit is None:
            return sorted(rows, key=change_order)
        return heapq.nsmallest(limit, rows, key=change_order)

    def _iter_new(self) -> Iterator[Change]:
        for w in self._by_workload:
            for key in w.new_keys:
                image = next((i.image for i in w.images if key in i.keys), "")
                yield Change(w.namespace, w.label, key[0], key[1], self._severity.get(key, "Unknown"), image)


def change_order(c: Change) -> tuple:
    return (-SEVERITY_RANK.get(c.severity, 0), c.namespace, c.workload, c.vulnerability, c.package)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    taken_at: str
    by_severity: tuple[int, ...]
    current: bool = False

    @property
    def total(self) -> int:
        return sum(self.by_severity)


@dataclass(frozen=True, slots=True)
class ApplySummary:
    created: int
    updated: int
    deleted: int
    unchanged: int
    kept: int
    unmanaged: int
    failed: int
    dry_run: bool
    target: str


@dataclass(frozen=True, slots=True)
class Totals:
    counts: Counts  # distinct scanned manifests, each counted once
    images: int
    scanned: int
    vulnerable: int
    unscanned: int
    unscanned_by_state: tuple[tuple[str, int], ...]
    images_by_highest: tuple[int, ...]  # vulnerable manifests per highest severity
    imv_objects: int  # (namespace, vulnerable manifest) pairs: the ImageManifestVulns
    pods: int
    namespaces: int
    workloads: int
    workloads_affected: int
    unresolved: int  # containers whose image manifest is unknown
    problems: int  # pods skipped, owner addresses rejected, objects not written


class Source(Protocol):
    """What a ReportContext was built from (job.report.context builds one): kept so that an owner's
    share can be built from the same inputs."""

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def triage(self) -> Triage: ...

    def build(self, only: frozenset[str] | None) -> "ReportContext": ...


@dataclass(slots=True, eq=False)
class ReportContext:
    cluster: str
    taken_at: str
    source: str
    scope: tuple[str, ...] | None
    #: The namespaces of a restricted context (an owner's mail); None for the whole report.
    only: tuple[str, ...] | None
    headline: str
    totals: Totals
    images: tuple[ImageItem, ...]  # most urgent first
    workloads: tuple[WorkloadItem, ...]  # most urgent first
    namespaces: tuple[NamespaceItem, ...]  # by name
    owner_groups: tuple[OwnerGroup, ...]
    coverage: tuple[CoverageItem, ...]  # job errors first
    changes: Changes
    trend: tuple[TrendPoint, ...]  # oldest first, the current run last
    apply: ApplySummary | None
    #: What the next run compares with: findings per workload, carried-forward ones included.
    findings: dict[WorkloadKey, frozenset[FindingKey]]
    severity_of: dict[FindingKey, str]
    #: What it was built from (job.report.context): the snapshot, the triage, an owner's share.
    inputs: Source
    #: The snapshot's day (a date ordinal): what days open, due and overdue are counted against.
    today: int = 0
    #: Per workload, the findings older than this run by the day first seen (for the next run).
    first_seen: dict[WorkloadKey, SeenByDay] = field(default_factory=dict)
    #: Findings that exceptions and VEX statements accept (job.report.accepted): listed, not ranked.
    accepted: AcceptedView = AcceptedView()
    #: Files written from exactly this context ("html", "xlsx", "json" → path), for reuse.
    artifacts: dict[str, Path] = field(default_factory=dict)

    @property
    def scanned_images(self) -> tuple[ImageItem, ...]:
        return tuple(i for i in self.images if i.scanned)

    @property
    def vulnerable_images(self) -> tuple[ImageItem, ...]:
        return tuple(i for i in self.images if i.counts.total)

    @property
    def affected_workloads(self) -> tuple[WorkloadItem, ...]:
        return tuple(w for w in self.workloads if w.counts.total)

    @property
    def triage(self) -> Triage:
        return self.inputs.triage

    @property
    def overdue(self) -> list[tuple[WorkloadItem, Finding]]:
        """Every overdue finding with its workload, the longest overdue first."""
        return ranking.overdue_rows(self.workloads)

    @property
    def entries(self) -> int:
        return sum(len(i.entries) for i in self.images)

    def restrict(self, namespaces: Iterable[str]) -> "ReportContext":
        """The same report for only these namespaces (an owner's view), without the apply outcome."""
        return self.inputs.build(frozenset(namespaces))


def image_order(i: ImageItem) -> tuple:
    """The most severe first, then the most entries."""
    return (-SEVERITY_RANK.get(i.counts.highest, -1) if i.counts.total else 1, -i.counts.total, str(i.ref))
