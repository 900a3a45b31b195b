"""Building the report's view (job.report.view) of a run: pure.

From the snapshot, the scan results, the apply outcome and the previous run (job.report.previous),
with the changes and trend computed by job.report.changes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from job.model import SEVERITIES, SEVERITY_RANK, ApplyOutcome, ImageRef, Pod, ScanResult, ScanState, Snapshot, Workload
from job.report import ranking
from job.report.accepted import accept
from job.report.changes import changes_since
from job.report.changes import trend as past_trend
from job.report.fixes import fixes_of, merge_fixes
from job.report.formats import plural
from job.report.links import registry_page
from job.report.owners import namespace_owners
from job.report.previous import Previous, read_previous
from job.report.ranking import Triage, WorkloadTriage
from job.report.text import one_line
from job.report.view import (NO_RESULT, SEVERITIES_DESC, ApplySummary, Changes, Counts, CoverageItem, Entry,
                             FindingKey, ImageItem, NamespaceItem, OwnerGroup, ReportContext, SeenByDay, Totals,
                             WorkloadItem, WorkloadKey, image_order)
from job.settings import Settings
from job.triage import base_layer, day_of


def count_entries(entries: Iterable[Entry]) -> Counts:
    sev = [0] * len(SEVERITIES)
    fixable = 0
    for _feature, vuln in entries:
        sev[SEVERITY_RANK.get(vuln.severity, 0)] += 1
        if vuln.fixed_by:
            fixable += 1
    return Counts(tuple(sev), fixable)


@dataclass(slots=True)
class _Whole:
    """What the whole report's build leaves for the owners' shares (hundreds of pages and mails would redo
    it): each image's entries, counts and fixes (wherever it runs), each workload's ranking, the severities."""

    images: dict[ImageRef, ImageItem] = field(default_factory=dict)
    ranked: dict[WorkloadKey, tuple[WorkloadTriage | None, SeenByDay | None]] = field(default_factory=dict)
    severity_of: dict[FindingKey, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What a context is built from, kept so that an owner's share can be built from it."""

    snapshot: Snapshot
    results: dict[ImageRef, ScanResult]
    outcome: ApplyOutcome | None
    previous: Previous | None
    settings: Settings
    pods_by_namespace: dict[str, list[Pod]]
    triage: Triage = Triage()
    whole: _Whole = field(default_factory=_Whole)

    def build(self, only: frozenset[str] | None) -> ReportContext:
        """The context of these inputs; of only these namespaces when given (an owner's share)."""
        return _build(self, only=only)


# --- building ----------------------------------------------------------------------------------


def cluster_name(settings: Settings, snapshot: Snapshot) -> str:
    """The cluster's name in the reports and the metrics: --cluster-name, else the snapshot's."""
    return one_line(settings.cluster_name or snapshot.cluster) or "cluster"


def build(*, snapshot: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome | None,
          previous: dict | None, settings: Settings, triage: Triage | None = None) -> ReportContext:
    by_namespace: dict[str, list[Pod]] = defaultdict(list)
    for pod in snapshot.pods:
        by_namespace[pod.namespace].append(pod)
    inputs = _Inputs(snapshot, results, outcome, read_previous(previous), settings, dict(by_namespace),
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
    images = {ref: _image_item(ref, results.get(ref), placed.where[ref], severity_of, placed.tagged.get(ref, ""),
                               inputs.whole.images.get(ref))
              for ref in sorted(placed.where)}
    if only is None:
        inputs.whole.images = images
    owners, owner_problems = _owners(snapshot, sorted({p.namespace for p in pods}), settings.owner_key)

    workloads = [_workload_item(ns, wl, owners[ns], placed.pods[(ns, wl)], [images[r] for r in refs],
                                placed.unresolved_count.get((ns, wl), 0))
                 for (ns, wl), refs in placed.refs.items()]
    for w in workloads:
        w.written = {ref: (tuple(texts), tuple(names))
                     for ref, (texts, names) in placed.written.get((w.namespace, w.workload), {}).items()}
    prev = inputs.previous
    changes, findings = changes_since(workloads, prev, severity_of, scope=snapshot.scope, only=only)
    today = day_of(snapshot.taken_at)
    tri = inputs.triage
    accepted = accept(workloads, tri.rules, today=today, soon_days=tri.soon_days, severity_of=severity_of,
                      everything=only is None, vex_documents=tri.vex_documents)
    if only is None:
        first_seen = ranking.annotate(workloads, findings, tri, prev, today=today, severity_of=severity_of,
                                      accepted=accepted.keys)
        inputs.whole.ranked = {w.key: (w.triage, first_seen.get(w.key)) for w in workloads}
        inputs.whole.severity_of = severity_of
    else:
        first_seen = ranking.annotate_share(workloads, findings, tri, prev, today=today, severity_of=severity_of,
                                            accepted=accepted.keys, whole=inputs.whole.ranked,
                                            whole_severity=inputs.whole.severity_of)
    workloads.sort(key=_workload_order)
    namespaces = _namespace_items(workloads, owners)

    coverage = _coverage(images.values(), placed.unresolved, snapshot, outcome, owner_problems, only)
    image_items = sorted(images.values(), key=image_order)
    totals = _totals(image_items, workloads, namespaces, len(pods), coverage)
    trend = past_trend(prev, totals, only)
    if changes.has_previous and len(trend) > 1:
        changes.delta = tuple(now - before for now, before in zip(totals.counts.by_severity, trend[-2].by_severity))
    cluster = cluster_name(settings, snapshot)
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
                severity_of: dict[FindingKey, str], written: str = "", whole: ImageItem | None = None) -> ImageItem:
    """whole: the same manifest's item in the whole report, whose entries, counts and fixes are these."""
    namespaces = tuple(sorted(where))
    workloads = tuple((ns, wl) for ns in namespaces for wl in sorted(where[ns], key=str))
    pods = tuple(f"{ns}/{pod}" for ns, wl in workloads for pod in where[ns][wl])
    if result is None:
        return ImageItem(ref, NO_RESULT, "no scan result for this manifest", "", "", (), Counts(), (),
                         frozenset(), namespaces, workloads, pods, job_error=False)
    entries: tuple[Entry, ...] = ()
    if whole is not None:
        entries = whole.entries
    elif result.state is ScanState.SCANNED and result.report is not None:
        # Only entries of a scanned report count: other states may carry stale layers.
        entries = tuple(sorted(((f, v) for f in result.report.vulnerable_features for v in f.vulnerabilities),
                               key=_entry_order))
    keys = _note_severities(entries, severity_of)
    page = registry_page(ref, backend=result.backend, given=result.page_url, written=(written,))
    if whole is not None:
        return ImageItem(ref, whole.state, whole.detail, whole.backend, page, entries, whole.counts, whole.fixes,
                         whole.keys, namespaces, workloads, pods, job_error=whole.job_error,
                         base_entries=whole.base_entries)
    base = base_layer(result.report.features) if entries and result.report is not None else ""
    return ImageItem(ref, result.state.value, one_line(result.detail), result.backend, page, entries,
                     count_entries(entries), fixes_of(entries), frozenset(keys), namespaces, workloads, pods,
                     job_error=result.state.is_job_error,
                     base_entries=sum(1 for f, _v in entries if f.added_by == base) if base else -1)


def _note_severities(entries: tuple[Entry, ...], severity_of: dict[FindingKey, str]) -> list[FindingKey]:
    """Each entry's key, its severity noted (the highest of any image's). One key tuple per entry,
    shared by the severities and the image's key set (190,000 of them at 50,000 pods)."""
    keys = []
    for f, v in entries:
        key = (f.name, v.name)
        known = severity_of.get(key)
        if known is None or SEVERITY_RANK.get(v.severity, 0) > SEVERITY_RANK.get(known, 0):
            severity_of[key] = v.severity
        keys.append(key)
    return keys


def _entry_order(entry: Entry) -> tuple:
    f, v = entry
    return (-SEVERITY_RANK.get(v.severity, 0), not v.fixed_by, v.name, f.name, f.version)


def _workload_item(ns: str, wl: Workload, owners: tuple[str, ...], pods: list[str], images: list[ImageItem],
                   unresolved: int) -> WorkloadItem:
    images.sort(key=image_order)
    if len(images) == 1:
        keys = images[0].keys
    else:
        keys = frozenset().union(*(i.keys for i in images))
    return WorkloadItem(ns, wl, owners, tuple(pods), tuple(images), unresolved,
                        Counts.add(i.counts for i in images), merge_fixes(i.fixes for i in images), keys)


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
        ordered = tuple(sorted(images.values(), key=image_order))
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


def _apply_summary(outcome: ApplyOutcome | None) -> ApplySummary | None:
    if outcome is None:
        return None
    return ApplySummary(len(outcome.created), len(outcome.updated), len(outcome.deleted), len(outcome.unchanged),
                        len(outcome.kept), len(outcome.unmanaged), len(outcome.failed), outcome.dry_run,
                        outcome.target)


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
