"""The report model: one pure view of a run that every renderer (HTML, XLSX, JSON, mail) reads.

Counting follows the ImageManifestVuln rules: vulnerability *entries* of a manifest's vulnerable
packages, per severity; "fixable" entries have a fixed-by version. A manifest is counted once in
the cluster totals however many namespaces run it; a namespace's totals count the manifests that
run in it (the sum of its ImageManifestVulns).
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from job import versions
from job.model import (SEVERITIES, SEVERITY_RANK, ApplyOutcome, Feature, ImageRef, Pod, ScanResult, ScanState,
                       Snapshot, Vulnerability, Workload)
from job.report import ranking, summary
from job.report.accepted import AcceptedView, accept
from job.report.fixes import Fix, fixes_of, merge_fixes
from job.report.formats import plural, signed
from job.report.links import registry_page
from job.report.ranking import Triage, WorkloadTriage
from job.report.owners import namespace_owners
from job.report.text import one_line
from job.settings import Settings
from job.triage import Finding, base_layer, day_of

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


def count_entries(entries: Iterable[Entry]) -> Counts:
    sev = list(_ZERO)
    fixable = 0
    for _feature, vuln in entries:
        sev[SEVERITY_RANK.get(vuln.severity, 0)] += 1
        if vuln.fixed_by:
            fixable += 1
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
            return sorted(rows, key=_change_order)
        return heapq.nsmallest(limit, rows, key=_change_order)

    def _iter_new(self) -> Iterator[Change]:
        for w in self._by_workload:
            for key in w.new_keys:
                image = next((i.image for i in w.images if key in i.keys), "")
                yield Change(w.namespace, w.label, key[0], key[1], self._severity.get(key, "Unknown"), image)


def _change_order(c: Change) -> tuple:
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


@dataclass(frozen=True, slots=True)
class VulnGroup:
    """One vulnerability in one package, across every image that has it."""

    name: str
    package: str
    severity: str
    installed: tuple[str, ...]
    fixed_by: tuple[str, ...]
    link: str
    cvss: float | None
    images: tuple[ImageItem, ...]
    namespaces: tuple[str, ...]
    workloads: int


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What a context is built from, kept so that an owner's share can be built from it."""

    snapshot: Snapshot
    results: dict[ImageRef, ScanResult]
    outcome: ApplyOutcome | None
    previous: summary.Previous | None
    settings: Settings
    pods_by_namespace: dict[str, list[Pod]]
    triage: Triage = Triage()


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
    inputs: _Inputs
    #: The snapshot's day (a date ordinal): what days open, due and overdue are counted against.
    today: int = 0
    #: Per workload, the day each finding older than this run was first seen (for the next run).
    first_seen: dict[WorkloadKey, dict[FindingKey, int]] = field(default_factory=dict)
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
        return _build(self.inputs, only=frozenset(namespaces))

    def vulnerability_groups(self, limit: int | None = None) -> tuple[list[VulnGroup], int]:
        """Vulnerabilities grouped by (name, package) across images, most urgent first; and how many
        groups there are in all."""
        return _vulnerability_groups(self.images, limit)


# --- building ----------------------------------------------------------------------------------


def build(*, snapshot: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome | None,
          previous: dict | None, settings: Settings, triage: Triage | None = None) -> ReportContext:
    by_namespace: dict[str, list[Pod]] = defaultdict(list)
    for pod in snapshot.pods:
        by_namespace[pod.namespace].append(pod)
    inputs = _Inputs(snapshot, results, outcome, summary.read_previous(previous), settings, dict(by_namespace),
                     triage or Triage())
    return _build(inputs, only=None)


def _build(inputs: _Inputs, *, only: frozenset[str] | None) -> ReportContext:
    snapshot, results, settings = inputs.snapshot, inputs.results, inputs.settings
    outcome = inputs.outcome if only is None else None
    if only is None:
        pods = snapshot.pods
    else:
        pods = [p for ns in sorted(only) for p in inputs.pods_by_namespace.get(ns, ())]

    placed = _place(pods)
    severity_of: dict[FindingKey, str] = {}
    images = {ref: _image_item(ref, results.get(ref), placed.where[ref], severity_of, placed.tagged.get(ref, ""))
              for ref in sorted(placed.where)}
    owners, owner_problems = _owners(snapshot, sorted({p.namespace for p in pods}), settings.owner_key)

    workloads = [_workload_item(ns, wl, owners[ns], placed.pods[(ns, wl)], [images[r] for r in refs],
                                placed.unresolved_count.get((ns, wl), 0))
                 for (ns, wl), refs in placed.refs.items()]
    for w in workloads:
        w.written = {ref: (tuple(texts), tuple(names))
                     for ref, (texts, names) in placed.written.get((w.namespace, w.workload), {}).items()}
    prev = inputs.previous
    changes, findings = _changes(workloads, prev, severity_of, scope=snapshot.scope, only=only)
    today = day_of(snapshot.taken_at)
    tri = inputs.triage
    accepted = accept(workloads, tri.rules, today=today, soon_days=tri.soon_days, severity_of=severity_of,
                      everything=only is None, vex_documents=tri.vex_documents)
    first_seen = ranking.annotate(workloads, findings, tri, prev, today=today, severity_of=severity_of,
                                  accepted=accepted.keys)
    workloads.sort(key=_workload_order)
    namespaces = _namespace_items(workloads, owners)

    coverage = _coverage(images.values(), placed.unresolved, snapshot, outcome, owner_problems, only)
    image_items = sorted(images.values(), key=_image_order)
    totals = _totals(image_items, workloads, namespaces, len(pods), coverage)
    trend = _trend(prev, totals, only)
    if changes.has_previous and len(trend) > 1:
        changes.delta = tuple(now - before for now, before in zip(totals.counts.by_severity, trend[-2].by_severity))
    cluster = one_line(settings.cluster_name or snapshot.cluster) or "cluster"
    return ReportContext(
        cluster=cluster, taken_at=snapshot.taken_at, source=snapshot.source, scope=snapshot.scope,
        only=tuple(sorted(only)) if only is not None else None,
        headline=headline(totals, changes) + accepted.headline_note, totals=totals, images=tuple(image_items),
        workloads=tuple(workloads), namespaces=namespaces, owner_groups=_owner_groups(namespaces),
        coverage=coverage, changes=changes, trend=trend,
        apply=_apply_summary(outcome),
        findings=findings, severity_of=severity_of, inputs=inputs, today=today, first_seen=first_seen,
        accepted=accepted)


@dataclass(slots=True)
class _Placement:
    """Where each manifest runs and what each workload runs: one pass over the pods."""

    where: dict[ImageRef, dict[str, dict[Workload, list[str]]]]  # ref → namespace → workload → pods
    pods: dict[tuple[str, Workload], list[str]]
    refs: dict[tuple[str, Workload], dict[ImageRef, None]]  # ordered sets
    #: Containers whose manifest is unknown, grouped: (ns, workload, container, image, why) → pods.
    unresolved: dict[tuple[str, Workload, str, str, str], list[str]]
    unresolved_count: dict[tuple[str, Workload], int]
    #: (namespace, workload) → ref → ({image as written: None}, {container name: None}): ordered sets.
    written: dict[tuple[str, Workload], dict[ImageRef, tuple[dict[str, None], dict[str, None]]]] = \
        field(default_factory=lambda: defaultdict(dict))
    #: ref → the first image text a pod spec wrote with a tag: Docker Hub's page is the tag's.
    tagged: dict[ImageRef, str] = field(default_factory=dict)


def _place(pods: Iterable[Pod]) -> _Placement:
    placed = _Placement(defaultdict(lambda: defaultdict(dict)), defaultdict(list), defaultdict(dict),
                        defaultdict(list), defaultdict(int))
    for pod in pods:
        wkey = (pod.namespace, pod.workload)
        placed.pods[wkey].append(pod.name)
        placed.refs[wkey]  # every workload is listed, even one whose images are all unknown
        for c in pod.containers:
            if c.ref is None:
                placed.unresolved[(pod.namespace, pod.workload, c.name, c.image, c.problem)].append(pod.name)
                placed.unresolved_count[wkey] += 1
                continue
            placed.refs[wkey][c.ref] = None
            texts = placed.written[wkey].get(c.ref)
            if texts is None:
                texts = placed.written[wkey][c.ref] = ({}, {})
            texts[0][one_line(c.image, limit=200)] = None
            if c.ref not in placed.tagged and ":" in c.image.split("@", 1)[0].rsplit("/", 1)[-1]:
                placed.tagged[c.ref] = c.image
            texts[1][one_line(c.name, limit=80)] = None
            pod_names = placed.where[c.ref][pod.namespace].setdefault(pod.workload, [])
            if not pod_names or pod_names[-1] != pod.name:
                pod_names.append(pod.name)
    return placed


def _owners(snapshot: Snapshot, namespaces: Iterable[str], key: str,
            ) -> tuple[dict[str, tuple[str, ...]], list[CoverageItem]]:
    """Each namespace's valid owner addresses, and a problem for each rejected one."""
    owners: dict[str, tuple[str, ...]] = {}
    problems: list[CoverageItem] = []
    for ns in namespaces:
        valid, rejected = namespace_owners(snapshot.namespaces.get(ns), key)
        owners[ns] = valid
        problems += [CoverageItem(kind="owner", subject=f"namespace {ns}", state="invalid owner address",
                                  detail=f"{key}: {item!r} is not a mail address; nobody is warned through it",
                                  namespaces=(ns,))
                     for item in rejected]
    return owners, problems


def _image_item(ref: ImageRef, result: ScanResult | None, where: dict[str, dict[Workload, list[str]]],
                severity_of: dict[FindingKey, str], written: str = "") -> ImageItem:
    namespaces = tuple(sorted(where))
    workloads = tuple((ns, wl) for ns in namespaces for wl in sorted(where[ns], key=str))
    pods = tuple(f"{ns}/{pod}" for ns, wl in workloads for pod in where[ns][wl])
    if result is None:
        return ImageItem(ref, NO_RESULT, "no scan result for this manifest", "", "", (), Counts(), (),
                         frozenset(), namespaces, workloads, pods, job_error=False)
    entries: tuple[Entry, ...] = ()
    if result.state is ScanState.SCANNED and result.report is not None:
        # Only entries of a scanned report count: other states may carry stale layers.
        entries = tuple(sorted(((f, v) for f in result.report.vulnerable_features for v in f.vulnerabilities),
                               key=_entry_order))
    keys = frozenset((f.name, v.name) for f, v in entries)
    for f, v in entries:
        key = (f.name, v.name)
        known = severity_of.get(key)
        if known is None or SEVERITY_RANK.get(v.severity, 0) > SEVERITY_RANK.get(known, 0):
            severity_of[key] = v.severity
    base = base_layer(result.report.features) if entries and result.report is not None else ""
    page = registry_page(ref, backend=result.backend, given=result.page_url, written=(written,))
    return ImageItem(ref, result.state.value, one_line(result.detail), result.backend, page,
                     entries, count_entries(entries), fixes_of(entries), keys, namespaces, workloads, pods,
                     job_error=result.state.is_job_error,
                     base_entries=sum(1 for f, _v in entries if f.added_by == base) if base else -1)


def _entry_order(entry: Entry) -> tuple:
    f, v = entry
    return (-SEVERITY_RANK.get(v.severity, 0), not v.fixed_by, v.name, f.name, f.version)


def _workload_item(ns: str, wl: Workload, owners: tuple[str, ...], pods: list[str], images: list[ImageItem],
                   unresolved: int) -> WorkloadItem:
    images.sort(key=_image_order)
    if len(images) == 1:
        keys = images[0].keys
    else:
        keys = frozenset().union(*(i.keys for i in images))
    return WorkloadItem(ns, wl, owners, tuple(pods), tuple(images), unresolved,
                        Counts.add(i.counts for i in images), merge_fixes(i.fixes for i in images), keys)


def _image_order(i: ImageItem) -> tuple:
    return (-SEVERITY_RANK.get(i.counts.highest, -1) if i.counts.total else 1, -i.counts.total, str(i.ref))


def _workload_order(w: WorkloadItem) -> tuple:
    """The triage ranking of its most urgent finding (job.triage.rank), then the most findings."""
    return (ranking.workload_rank(w), -w.counts.fixable, -w.counts.total, w.namespace, w.label)


def _namespace_items(workloads: list[WorkloadItem], owners: dict[str, tuple[str, ...]]) -> tuple[NamespaceItem, ...]:
    by_ns: dict[str, list[WorkloadItem]] = defaultdict(list)
    for w in workloads:
        by_ns[w.namespace].append(w)
    items = []
    for ns in sorted(by_ns):
        images = {id(i): i for w in by_ns[ns] for i in w.images}
        ordered = tuple(sorted(images.values(), key=_image_order))
        items.append(NamespaceItem(ns, owners.get(ns, ()), tuple(by_ns[ns]), ordered,
                                   Counts.add(i.counts for i in ordered)))
    return tuple(items)


def _owner_groups(namespaces: tuple[NamespaceItem, ...]) -> tuple[OwnerGroup, ...]:
    groups: dict[tuple[str, ...], list[NamespaceItem]] = defaultdict(list)
    for n in namespaces:
        groups[n.owners].append(n)
    out = []
    for owners_, items in groups.items():
        images = {id(i): i for n in items for i in n.images}
        out.append(OwnerGroup(owners_, tuple(items), Counts.add(i.counts for i in images.values())))
    # Owned groups first, most urgent first; the unowned namespaces last.
    out.sort(key=lambda g: (not g.owners, -SEVERITY_RANK.get(g.counts.highest, -1) if g.counts.total else 1,
                            -g.counts.total, g.owners))
    return tuple(out)


def _coverage(images: Iterable[ImageItem], unresolved: dict[tuple[str, Workload, str, str, str], list[str]],
              snapshot: Snapshot, outcome: ApplyOutcome | None, owner_problems: list[CoverageItem],
              only: frozenset[str] | None) -> tuple[CoverageItem, ...]:
    items: list[CoverageItem] = []
    for image in images:
        if image.scanned:
            continue
        items.append(CoverageItem(
            kind="image", subject=str(image.ref), state=image.state, detail=image.detail,
            namespaces=image.namespaces, workloads=tuple(f"{ns}/{wl}" for ns, wl in image.workloads),
            pods=len(image.pods), job_error=image.job_error))
    for (ns, wl, container, image_text, problem), pod_names in unresolved.items():
        items.append(CoverageItem(
            kind="container", subject=f"{ns}/{wl} container {container}: {one_line(image_text)}",
            state="image not resolved", detail=one_line(problem) or "the image manifest digest is unknown",
            namespaces=(ns,), workloads=(f"{ns}/{wl}",), pods=len(pod_names)))
    # A container whose image is unknown is also one of the snapshot's problems: list it once.
    listed = {f"{ns}/{pod} container {container}"
              for (ns, _wl, container, _image, _why), pod_names in unresolved.items() for pod in pod_names}
    for problem in snapshot.problems:
        ns = problem.where.split("/", 1)[0]
        if (only is not None and ns not in only) or problem.where in listed:
            continue
        # A VEX document or a namespace's exceptions annotation that was refused: not applied.
        refused = problem.where == "VEX" or problem.where.endswith("/annotation")
        items.append(CoverageItem(kind="input" if refused else "pod", subject=one_line(problem.where),
                                  state="not applied" if refused else "skipped", detail=one_line(problem.message),
                                  namespaces=(ns,) if "/" in problem.where else ()))
    items.extend(owner_problems)
    if outcome is not None:
        for problem in outcome.failed:
            items.append(CoverageItem(kind="object", subject=one_line(problem.where), state="not written",
                                      detail=one_line(problem.message), job_error=True))
        for key, left_out in sorted(outcome.left_out.items()):
            ns = key.split("/", 1)[0]
            if only is not None and ns not in only:
                continue
            counts = ", ".join(f"{n} {severity}" for severity, n in sorted(
                left_out.items(), key=lambda item: -SEVERITY_RANK.get(item[0], 0)))
            items.append(CoverageItem(
                kind="object", subject=one_line(key), state="shrunk to fit", namespaces=(ns,),
                detail=f"too large for the cluster: the ImageManifestVuln keeps the most severe entries and "
                       f"leaves out {one_line(counts)}; this report lists them all"))
    items.sort(key=lambda c: (not c.job_error, _KIND_ORDER.get(c.kind, 9), c.state, c.subject))
    return tuple(items)


_KIND_ORDER = {"image": 0, "container": 1, "pod": 2, "object": 3, "owner": 4, "input": 5}


def _totals(images: list[ImageItem], workloads: list[WorkloadItem], namespaces: tuple[NamespaceItem, ...],
            pods: int, coverage: tuple[CoverageItem, ...]) -> Totals:
    scanned = [i for i in images if i.scanned]
    by_state: dict[str, int] = defaultdict(int)
    for i in images:
        if not i.scanned:
            by_state[i.state] += 1
    by_highest = [0] * len(SEVERITIES)
    for i in scanned:
        if i.counts.total:
            by_highest[SEVERITY_RANK[i.counts.highest]] += 1
    return Totals(
        counts=Counts.add(i.counts for i in scanned), images=len(images), scanned=len(scanned),
        vulnerable=sum(by_highest), unscanned=len(images) - len(scanned),
        unscanned_by_state=tuple(sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0]))),
        images_by_highest=tuple(by_highest), imv_objects=sum(n.vulnerable_images for n in namespaces),
        pods=pods, namespaces=len(namespaces), workloads=len(workloads),
        workloads_affected=sum(1 for w in workloads if w.counts.total),
        unresolved=sum(c.pods for c in coverage if c.kind == "container"),
        problems=sum(1 for c in coverage if c.kind in ("pod", "owner", "object", "input")))


def _changes(workloads: list[WorkloadItem], prev: summary.Previous | None, severity_of: dict[FindingKey, str],
             *, scope: tuple[str, ...] | None, only: frozenset[str] | None,
             ) -> tuple[Changes, dict[WorkloadKey, frozenset[FindingKey]]]:
    findings = {w.key: w.keys for w in workloads if w.keys}
    if prev is None:
        return Changes("", Counts(), (), Counts(), 0, (), severity_of), findings

    new_sev = list(_ZERO)
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
    resolved.sort(key=_change_order)
    resolved_sev = list(_ZERO)
    for c in resolved:
        resolved_sev[SEVERITY_RANK.get(c.severity, 0)] += 1
    changes = Changes(prev.taken_at, Counts(tuple(new_sev)), tuple(resolved), Counts(tuple(resolved_sev)),
                      unchecked, tuple(with_new), severity_of)
    return changes, findings


def _trend(prev: summary.Previous | None, totals: Totals, only: frozenset[str] | None) -> tuple[TrendPoint, ...]:
    now = TrendPoint("", totals.counts.by_severity, current=True)
    if prev is None:
        return (now,)
    if only is None:
        points = [TrendPoint(t, sev) for t, sev in prev.history]
    else:
        points = [TrendPoint(prev.taken_at, prev.totals_for(only))]
    return tuple(points[-(summary.HISTORY_LENGTH - 1):]) + (now,)


def _apply_summary(outcome: ApplyOutcome | None) -> ApplySummary | None:
    if outcome is None:
        return None
    return ApplySummary(len(outcome.created), len(outcome.updated), len(outcome.deleted), len(outcome.unchanged),
                        len(outcome.kept), len(outcome.unmanaged), len(outcome.failed), outcome.dry_run,
                        outcome.target)


def _vulnerability_groups(images: Iterable[ImageItem], limit: int | None) -> tuple[list[VulnGroup], int]:
    groups: dict[FindingKey, list[Any]] = {}
    for image in images:
        for f, v in image.entries:
            key = (v.name, f.name)
            g = groups.get(key)
            if g is None:
                groups[key] = [SEVERITY_RANK.get(v.severity, 0), {id(image): image}, [f, v]]
            else:
                g[0] = max(g[0], SEVERITY_RANK.get(v.severity, 0))
                g[1][id(image)] = image
                g[2].extend((f, v))
    order = sorted(groups.items(), key=lambda kv: (-kv[1][0], -len(kv[1][1]), kv[0]))
    if limit is not None:
        order = order[:limit]
    out = []
    for (name, package), (rank, images_by_id, pairs) in order:
        feats, vulns = pairs[0::2], pairs[1::2]
        group_images = tuple(sorted(images_by_id.values(), key=_image_order))
        namespaces = tuple(sorted({ns for i in group_images for ns in i.namespaces}))
        workloads = len({(ns, wl) for i in group_images for ns, wl in i.workloads})
        link = next((v.link for v in vulns if v.link), "")
        scores = [v.cvss_score for v in vulns if v.cvss_score is not None]
        scheme = versions.scheme(feats[0].version_format, feats[0].namespace_name)
        out.append(VulnGroup(
            name=name, package=package, severity=SEVERITIES[rank],
            installed=versions.ordered(scheme, tuple(f.version for f in feats)),
            fixed_by=versions.ordered(scheme, tuple(v.fixed_by for v in vulns if v.fixed_by)),
            link=link, cvss=max(scores) if scores else None, images=group_images,
            namespaces=namespaces, workloads=workloads))
    return out, len(groups)


# --- words -------------------------------------------------------------------------------------


def headline(totals: Totals, changes: Changes) -> str:
    """One sentence a person reads first; it never says "all clear" about images nobody scanned."""
    if totals.pods == 0:
        return "No running pods in scope"
    if totals.images == 0:
        return (f"No image could be identified: {plural(totals.unresolved, 'container')} with an unknown "
                f"image, see Coverage")
    unscanned = plural(totals.unscanned, "image") + " not scanned"
    if totals.scanned == 0:
        return f"No image could be scanned: {unscanned}, see Coverage"
    counts = totals.counts
    if counts.total == 0:
        text = f"No known vulnerabilities in {plural(totals.scanned, 'scanned image')}"
        return text + (f"; {unscanned}" if totals.unscanned else "")
    urgent = [(s, counts.of(s)) for s in SEVERITIES_DESC if counts.of(s)]
    top = [f"{n:,} {s}" for s, n in urgent if SEVERITY_RANK[s] >= SEVERITY_RANK["High"]] or \
          [f"{urgent[0][1]:,} {urgent[0][0]}"]
    text = (f"{' and '.join(top[:2])} of {plural(counts.total, 'vulnerability', 'vulnerabilities')} "
            f"in {totals.vulnerable:,} of {plural(totals.images, 'image')}")
    if changes.has_previous:
        text += f"; since the last run: {changes.delta_text()}"
    if totals.unscanned:
        text += f"; {unscanned}"
    return text
