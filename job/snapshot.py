"""Snapshot: every running pod, its containers' image manifests and its workload.

Live, from the API server's paginated LIST (the calls are in job.kube), or offline, from a
`kubectl get pods -A -o json` dump; either way pod JSON is parsed by job.pods, page by page.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from job.cluster import Cluster
from job.codec import decode_json, strings_only
from job.errors import ConfigError
from job.labels import matches, parse_selector
from job.log import RunLog
from job.memory import gc_paused
from job.model import Namespace, Pod, Problem, Snapshot, Workload
from job.pods import OWNER_KINDS, ParseCache, controller_of, decode_pod_page, excerpt, owner_index, parse_pod
from job.settings import Settings


# --- which pods ----------------------------------------------------------------------------


def in_scope(namespace: str, settings: Settings) -> bool:
    if settings.namespace and namespace not in settings.namespace:
        return False
    if settings.include_namespace and not any(fnmatch.fnmatchcase(namespace, p) for p in settings.include_namespace):
        return False
    return not any(fnmatch.fnmatchcase(namespace, p) for p in settings.exclude_namespace)


def scope_of(settings: Settings, all_namespaces: Iterable[str]) -> tuple[str, ...] | None:
    """The namespaces the run owns; None when it owns them all (no namespace flag given)."""
    if not (settings.namespace or settings.include_namespace or settings.exclude_namespace):
        return None
    return tuple(sorted(ns for ns in set(all_namespaces) | set(settings.namespace) if in_scope(ns, settings)))


class SnapshotBuilder:
    """Pods parsed page by page as a LIST returns them, so that only one page of raw JSON is held
    at a time. The workloads that owner objects name (ReplicaSet → Deployment, Job → CronJob) are
    filled in by finish(), once those owners are known: until then, naming conventions stand in."""

    def __init__(self, settings: Settings, problems: list[Problem] | None = None) -> None:
        self.settings = settings
        self.problems = problems if problems is not None else []
        self.pods: list[Pod] = []
        #: Kinds of owner objects the pods name (ReplicaSet, Job, ReplicationController).
        self.owner_kinds: set[str] = set()
        self._seen: set[str] = set()
        self._cache = ParseCache()
        self._controlled: list[tuple[int, tuple[str, str, str]]] = []  # (pod index, (ns, kind, name))
        self.unsure: set[str] = set()

    def add(self, pod_items: Iterable[Any]) -> None:
        with gc_paused():  # tens of thousands of new objects per page, none in a cycle
            self._add(pod_items)

    def _add(self, pod_items: Iterable[Any]) -> None:
        for item in pod_items:
            if not isinstance(item, dict):
                self.problems.append(Problem("pod list", "an item that is not an object was skipped"))
                self.unsure.add("*")
                continue
            problems_before = len(self.problems)
            pod = parse_pod(item, {}, self.problems, cache=self._cache)
            if len(self.problems) > problems_before or (pod is not None and any(c.ref is None for c in pod.containers)):
                # Seen but not read in full: whatever it runs, its findings must not be removed.
                self.unsure.add(_unsure_key(item))
            if pod is None or not in_scope(pod.namespace, self.settings):
                continue
            if pod.key in self._seen:  # a LIST never repeats a pod; a hand-made file might
                continue
            self._seen.add(pod.key)
            meta = item["metadata"]
            for ref in meta.get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("kind") in OWNER_KINDS:
                    self.owner_kinds.add(ref["kind"])
            controller = controller_of(meta)
            if controller is not None and controller[0] in OWNER_KINDS:
                self._controlled.append((len(self.pods), (pod.namespace, *controller)))
            self.pods.append(pod)

    def finish(self, *, owners: Mapping[tuple[str, str, str], tuple[str, str]], namespaces: Mapping[str, Namespace],
               cluster: str, source: str, pages: int) -> Snapshot:
        pods = self.pods
        for index, key in self._controlled:
            parent = owners.get(key)
            if parent is not None:
                pods[index] = dataclasses.replace(pods[index], workload=self._cache.workload(Workload(*parent)))
        self._controlled.clear()
        return Snapshot(taken_at=_now(), cluster=cluster, pods=pods, namespaces=dict(namespaces),
                        problems=self.problems, source=source, pages=pages,
                        scope=scope_of(self.settings, list(namespaces) + [p.namespace for p in pods]),
                        selector=self.settings.selector, unsure=self.unsure)


def _unsure_key(item: Any) -> str:
    """What an item that was not read in full stands for: its pod, else its namespace, else all."""
    meta = item.get("metadata") if isinstance(item, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if not isinstance(namespace, str) or not namespace:
        return "*"
    name = meta.get("name")
    return f"{namespace}/{name}" if isinstance(name, str) and name else namespace


def build_snapshot(pod_items: Iterable[Mapping[str, Any]], *, settings: Settings, owners: Mapping,
                   namespaces: Mapping[str, Namespace], cluster: str, source: str, pages: int,
                   problems: list[Problem] | None = None) -> Snapshot:
    builder = SnapshotBuilder(settings, problems)
    builder.add(pod_items)
    return builder.finish(owners=owners, namespaces=namespaces, cluster=cluster, source=source, pages=pages)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- offline input -------------------------------------------------------------------------


def _labels_of(pod: Any) -> dict[str, str] | None:
    """A pod's labels, or None when they (or the pod) are not of the shape the API server gives."""
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    labels = meta.get("labels", {}) if isinstance(meta, dict) else None
    if labels is None and isinstance(meta, dict):
        return {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return None
    return labels


def namespace_of(item: Mapping[str, Any], problems: list[Problem]) -> Namespace | None:
    """A Namespace object's name, labels and annotations; labels or annotations that are not strings
    are left out, and a namespace without a name skipped, with a Problem each."""
    meta = item.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        problems.append(Problem("namespace list", f"a Namespace without a metadata.name was skipped: "
                                                  f"{excerpt(item)}"))
        return None
    labels, bad_labels = strings_only(meta.get("labels"))
    annotations, bad_annotations = strings_only(meta.get("annotations"))
    for what, bad in (("label", bad_labels), ("annotation", bad_annotations)):
        if bad == ["*"]:
            problems.append(Problem(f"namespace {name}", f"metadata.{what}s is not an object: ignored"))
        elif bad:
            problems.append(Problem(f"namespace {name}", f"{what}s whose values are not strings ignored: "
                                                         f"{', '.join(bad[:10])}"))
    return Namespace(name, dict(labels), dict(annotations))


def load_pod_list(path: Path, settings: Settings) -> Snapshot:
    """Offline: a `kubectl get pods -A -o json` dump (a List or PodList). If it also holds ReplicaSets,
    Jobs, ReplicationControllers or Namespaces (`kubectl get pods,rs,jobs,ns -A -o json`), they are used
    to find workloads and owners."""
    requirements = parse_selector(settings.selector) if settings.selector else None
    try:
        doc = decode_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read pod list {path}: {exc.strerror}") from exc
    except ValueError as exc:  # not JSON, not UTF-8, nested too deeply
        raise ConfigError(f"pod list {path} is not JSON: {str(exc)[:200]}") from exc
    if isinstance(doc, dict) and doc.get("kind") == "Pod":
        items: list[Any] = [doc]
    elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]
    else:
        raise ConfigError(f"pod list {path} is not a List or PodList (as `kubectl get pods -A -o json` prints)")
    pods, others = [], []
    for item in items:
        kind = item.get("kind") if isinstance(item, dict) else None
        (pods if kind in (None, "Pod") else others).append(item)
    problems: list[Problem] = []
    namespaces: dict[str, Namespace] = {}
    for n in others:
        if isinstance(n, dict) and n.get("kind") == "Namespace":
            namespace = namespace_of(n, problems)
            if namespace is not None:
                namespaces[namespace.name] = namespace
    if requirements is not None:
        # A pod whose labels cannot be read is kept for parse_pod, which lists it as a problem.
        pods = [p for p in pods if _labels_of(p) is None or matches(_labels_of(p), requirements)]
    snap = build_snapshot(pods, settings=settings, owners=owner_index(others, problems), namespaces={},
                          cluster=settings.cluster_name or "offline", source=str(path), pages=1,
                          problems=problems)
    list_meta = doc.get("metadata") if isinstance(doc, dict) else None
    if isinstance(list_meta, dict) and list_meta.get("continue"):
        # One page of a paginated LIST: the pods of the other pages are not known to be gone.
        snap.problems.append(Problem(str(path), "the pod list is one page of a longer list (metadata.continue "
                                                "is set): nothing it does not hold is taken as gone"))
        snap.unsure.add("*")
    for ns in sorted({p.namespace for p in snap.pods} - set(namespaces)):
        namespaces[ns] = Namespace(ns)
    snap.namespaces = {k: v for k, v in sorted(namespaces.items()) if in_scope(k, settings)}
    return snap


# --- live ----------------------------------------------------------------------------------


def take(client: Cluster, settings: Settings, log: RunLog) -> Snapshot:
    """Live: one paginated LIST of running pods (per selected namespace when --namespace is given),
    parsed page by page while the next page is on its way; the namespaces (for scope and owner
    routing); and the ReplicaSets/Jobs/ReplicationControllers the pods name (metadata only)."""
    problems: list[Problem] = []
    namespaces = {n.name: n for n in client.list_namespaces(names=settings.namespace)}
    builder = SnapshotBuilder(settings, problems)
    pages = listed = 0
    targets: list[str | None] = list(settings.namespace) or [None]
    owners: list[dict] = []
    # The collector is held off for the whole listing, not page by page: a collection that the
    # new objects of one page trigger would traverse that page's JSON and every Pod parsed so far.
    # Decoded JSON and Pods hold no cycles, and the LIST's requests leave none behind either.
    with gc_paused():
        for ns in targets:
            for page in one_page_ahead(client.list_pods(namespace=ns, selector=settings.selector,
                                                        page_size=settings.page_size, decode=decode_pod_page)):
                pages += 1
                listed += len(page)
                builder.add(page)
                log.progress("pods listed", listed, listed)
        for kind in sorted(builder.owner_kinds):
            try:
                owners.extend(client.list_metadata(kind, namespaces=settings.namespace))
            except Exception as exc:  # noqa: BLE001 - owners only refine names; never fatal
                problems.append(Problem(f"workloads of kind {kind}", f"cannot list them ({exc}); "
                                        "workload names inferred from naming conventions"))
        return builder.finish(owners=owner_index(owners), namespaces=namespaces,
                              cluster=settings.cluster_name or client.cluster_name, source="cluster", pages=pages)


_END = object()


class _NextPage(threading.Thread):
    """The next page, asked for on a daemon thread: an interrupted run (Ctrl-C) exits without waiting
    for a page the API server is slow to send (a pool's worker would be joined at exit)."""

    def __init__(self, pages: Iterator[list[dict]]) -> None:
        super().__init__(name="pod-pages", daemon=True)
        self.pages, self.page, self.error = pages, _END, None
        self.start()

    def run(self) -> None:
        try:
            self.page = next(self.pages, _END)
        except BaseException as exc:  # noqa: BLE001 - raised where the page would have come
            self.error = exc

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.page


def one_page_ahead(pages: Iterable[list[dict]]) -> Iterator[list[dict]]:
    """The pages of a LIST, the next one asked for (and decoded) on a thread of its own while the
    caller parses this one, so that the API server prepares and sends it meanwhile. One page
    ahead at most: no more than two pages of JSON are held at a time. A page that cannot be had
    raises its error here, where that page would have come, as the LIST itself does. A caller
    that stops early does not wait for the page on its way, and no other is asked for."""
    pages = iter(pages)
    ahead = _NextPage(pages)
    while (page := ahead.result()) is not _END:
        ahead = _NextPage(pages)
        yield page
