"""Snapshot: every running pod, its containers' image manifests and its workload.

The parsing here is pure: it takes pod JSON as the API server (or `kubectl get pods -A -o json`)
returns it, as plain dicts, and never the kubernetes client's model classes, which are far too
slow for 50,000 pods. The live LIST calls are in job.kube.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import re
import reprlib
from pathlib import Path
from typing import Any, Iterable, Mapping

from job.cluster import Cluster
from job.codec import decode_json, strings_only
from job.errors import ConfigError
from job.image_refs import ImageParseError, resolve_image
from job.labels import matches, parse_selector
from job.log import RunLog
from job.memory import gc_paused
from job.model import Container, ContainerKind, ImageRef, Namespace, Pod, Problem, Snapshot, Workload
from job.settings import Settings

_CRONJOB_JOB = re.compile(r"^(.+)-[0-9]{8,}$")
#: Kinds whose owner (one level up) names the workload; listed metadata-only when pods name them.
OWNER_KINDS = ("ReplicaSet", "Job", "ReplicationController")

_KINDS = ((ContainerKind.CONTAINER, "containers", "containerStatuses"),
          (ContainerKind.INIT, "initContainers", "initContainerStatuses"),
          (ContainerKind.EPHEMERAL, "ephemeralContainers", "ephemeralContainerStatuses"))


# --- pods ----------------------------------------------------------------------------------


def controller_of(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the pod's controller owner (else its first owner), or None. Owner
    references of the wrong shape are passed over (parse_pod reports them)."""
    refs = meta.get("ownerReferences")
    if not isinstance(refs, list):
        return None
    refs = [r for r in refs if isinstance(r, dict) and isinstance(r.get("kind"), str) and r["kind"]
            and isinstance(r.get("name"), str) and r["name"]]
    controller = next((r for r in refs if r.get("controller") is True), refs[0] if refs else None)
    if controller is None:
        return None
    return controller["kind"], controller["name"]


def top_owner(meta: Mapping[str, Any], owners: Mapping[tuple[str, str, str], tuple[str, str]]) -> Workload:
    """The workload behind a pod: its controller owner, one more level up for ReplicaSets, Jobs and
    ReplicationControllers (Deployment, CronJob, DeploymentConfig), from `owners`
    ({(namespace, kind, name): (owner kind, owner name)}) or, without that, from naming conventions.
    """
    controller = controller_of(meta)
    if controller is None:
        return Workload("Pod", str(meta.get("name", "")))
    kind, name = controller
    parent = owners.get((str(meta.get("namespace", "")), kind, name))
    if parent is not None:
        return Workload(*parent)
    labels = meta.get("labels")
    labels = labels if isinstance(labels, dict) else {}
    if kind == "ReplicaSet":
        template_hash = labels.get("pod-template-hash")
        if isinstance(template_hash, str) and template_hash and name.endswith("-" + template_hash):
            return Workload("Deployment", name[: -len(template_hash) - 1])
    elif kind == "Job":
        # CronJobs name their Jobs <cronjob>-<scheduled time in minutes>.
        match = _CRONJOB_JOB.match(name)
        if match:
            return Workload("CronJob", match.group(1))
    elif kind == "ReplicationController":
        dc_name = labels.get("openshift.io/deployment-config.name")
        if isinstance(dc_name, str) and dc_name:
            return Workload("DeploymentConfig", dc_name)
    return Workload(kind, name)


class ParseCache:
    """Per snapshot: the manifests resolved so far and the strings seen so far. Tens of thousands
    of containers run a few thousand manifests, and namespace, image and workload names recur in
    every pod: each is parsed and held once."""

    __slots__ = ("refs", "strings", "workloads")

    def __init__(self) -> None:
        self.refs: dict[tuple[str, str, str], ImageRef | str] = {}
        self.strings: dict[str, str] = {}
        self.workloads: dict[Workload, Workload] = {}

    def text(self, value: str) -> str:
        return self.strings.setdefault(value, value)

    def resolve(self, image_id: str, status_image: str, spec_image: str) -> ImageRef:
        key = (image_id, status_image, spec_image)
        found = self.refs.get(key)
        if found is None:
            try:
                ref = resolve_image(image_id, status_image, spec_image)
                found = ImageRef(self.text(ref.host), self.text(ref.repository), self.text(ref.digest))
            except ImageParseError as exc:
                found = str(exc)
            self.refs[key] = found
        if isinstance(found, str):
            raise ImageParseError(found)
        return found

    def workload(self, workload: Workload) -> Workload:
        return self.workloads.setdefault(workload, workload)


class Malformed(ValueError):
    """A field of an item that does not have the type the API server gives it."""


_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", bool: "true or false"}


def _typed(value: Any, kind: type, what: str) -> Any:
    """`value` when it is absent (None) or of the JSON type the API server gives the field."""
    if value is None or isinstance(value, kind):
        return value
    raise Malformed(f"{what} is not {_TYPE_NAMES[kind]}")


def _excerpt(value: Any) -> str:
    """A short, safe description of a malformed item (however deeply nested)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother, short.maxdict = 3, 40, 40, 6
    return short.repr(value)[:160]


def check_metadata(meta: Mapping[str, Any]) -> None:
    """The metadata fields read from a pod: Malformed when one has the wrong type."""
    _typed(meta.get("uid"), str, "metadata.uid")
    labels = _typed(meta.get("labels"), dict, "metadata.labels")
    if labels and not all(isinstance(v, str) for v in labels.values()):
        raise Malformed("metadata.labels holds a value that is not a string")
    for ref in _typed(meta.get("ownerReferences"), list, "metadata.ownerReferences") or ():
        _typed(ref, dict, "an entry of metadata.ownerReferences")
        if ref is not None:
            _typed(ref.get("kind"), str, "metadata.ownerReferences[].kind")
            _typed(ref.get("name"), str, "metadata.ownerReferences[].name")
            _typed(ref.get("controller"), bool, "metadata.ownerReferences[].controller")


def parse_pod(pod: Mapping[str, Any], owners: Mapping[tuple[str, str, str], tuple[str, str]],
              problems: list[Problem], *, cache: ParseCache | None = None) -> Pod | None:
    """One running pod, or None (not running, or malformed: then a Problem is recorded). A field
    of the wrong type skips the pod, or the container it belongs to, with a Problem saying which."""
    meta = pod.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if not (isinstance(name, str) and name and isinstance(namespace, str) and namespace):
        problems.append(Problem("pod list", "an item without a metadata.name and metadata.namespace (strings) "
                                            f"was skipped: {_excerpt(pod)}"))
        return None
    where = f"{namespace}/{name}"
    try:
        return _parse_pod(pod, meta, where, owners, problems, cache if cache is not None else ParseCache())
    except Malformed as exc:
        problems.append(Problem(where, f"pod skipped: {exc}"))
        return None


def _parse_pod(pod: Mapping[str, Any], meta: Mapping[str, Any], where: str,
               owners: Mapping[tuple[str, str, str], tuple[str, str]], problems: list[Problem],
               cache: ParseCache) -> Pod | None:
    status = pod.get("status")
    if not isinstance(status, dict):
        problems.append(Problem(where, "pod without status, skipped"))
        return None
    if _typed(status.get("phase"), str, "status.phase") != "Running":
        return None
    check_metadata(meta)
    text = cache.text
    spec = _typed(pod.get("spec"), dict, "spec") or {}
    containers: list[Container] = []
    for kind, spec_key, status_key in _KINDS:
        statuses = _typed(status.get(status_key), list, f"status.{status_key}")
        if not statuses:
            continue
        spec_images: dict[str, str] = {}
        for c in _typed(spec.get(spec_key), list, f"spec.{spec_key}") or ():
            c = _typed(c, dict, f"an entry of spec.{spec_key}") or {}
            image = _typed(c.get("image"), str, f"spec.{spec_key}[].image") or ""
            spec_images[_typed(c.get("name"), str, f"spec.{spec_key}[].name") or ""] = image
        for cs in statuses:
            try:
                container = _parse_container(cs, kind, status_key, spec_images, where, problems, cache)
            except Malformed as exc:
                problems.append(Problem(where, f"malformed {status_key} entry skipped: {exc}"))
                continue
            if container is not None:
                containers.append(container)
    pull_secrets = []
    for s in _typed(spec.get("imagePullSecrets"), list, "spec.imagePullSecrets") or ():
        secret = _typed(s, dict, "an entry of spec.imagePullSecrets") or {}
        secret_name = _typed(secret.get("name"), str, "spec.imagePullSecrets[].name")
        if secret_name:
            pull_secrets.append(text(secret_name))
    account = _typed(spec.get("serviceAccountName"), str, "spec.serviceAccountName") \
        or _typed(spec.get("serviceAccount"), str, "spec.serviceAccount") or "default"
    return Pod(namespace=text(meta["namespace"]), name=meta["name"], uid=meta.get("uid") or "",
               workload=cache.workload(top_owner(meta, owners)), service_account=text(account),
               pull_secrets=tuple(pull_secrets), containers=tuple(containers))


def _parse_container(cs: Any, kind: ContainerKind, status_key: str, spec_images: Mapping[str, str], where: str,
                     problems: list[Problem], cache: ParseCache) -> Container | None:
    if not isinstance(cs, dict) or not isinstance(cs.get("name"), str) or not cs["name"]:
        raise Malformed("not an object with a name")
    image_id = _typed(cs.get("imageID"), str, "imageID") or ""
    if not image_id:
        return None  # never started: nothing of it has run yet
    spec_image = spec_images.get(cs["name"]) or ""
    status_image = _typed(cs.get("image"), str, "image") or ""
    container_id = _typed(cs.get("containerID"), str, "containerID") or ""
    try:
        ref: ImageRef | None = cache.resolve(image_id, status_image, spec_image)
        problem = ""
    except ImageParseError as exc:
        ref, problem = None, str(exc)
        problems.append(Problem(f"{where} container {cs['name']}", problem))
    return Container(name=cache.text(cs["name"]), kind=kind, image=cache.text(spec_image or status_image),
                     container_id=container_id, ref=ref, problem=problem)


def owner_index(items: Iterable[Any], problems: list[Problem] | None = None
                ) -> dict[tuple[str, str, str], tuple[str, str]]:
    """{(namespace, kind, name): (owner kind, owner name)} from ReplicaSets, Jobs, ReplicationControllers
    (full objects or metadata-only ones), for the objects that have a controller owner. Items of the
    wrong shape are skipped (a Problem each, when `problems` is given): their pods' workloads are then
    named by convention."""
    index: dict[tuple[str, str, str], tuple[str, str]] = {}
    for item in items:
        try:
            key, refs = _owner_item(item)
            for ref in refs:
                _typed(ref, dict, "an entry of metadata.ownerReferences")
                ref_kind = _typed(ref.get("kind"), str, "metadata.ownerReferences[].kind")
                ref_name = _typed(ref.get("name"), str, "metadata.ownerReferences[].name")
                if _typed(ref.get("controller"), bool, "metadata.ownerReferences[].controller") \
                        and ref_kind and ref_name:
                    index[key] = (ref_kind, ref_name)
        except Malformed as exc:
            if problems is not None:
                problems.append(Problem("owner list", f"an item was skipped ({exc}), its pods' workloads are "
                                                      f"named by convention: {_excerpt(item)}"))
    return index


def _owner_item(item: Any) -> tuple[tuple[str, str, str], list]:
    if not isinstance(item, dict):
        raise Malformed("not an object")
    kind = _typed(item.get("kind"), str, "kind") or ""
    meta = _typed(item.get("metadata"), dict, "metadata") or {}
    namespace = _typed(meta.get("namespace"), str, "metadata.namespace") or ""
    name = _typed(meta.get("name"), str, "metadata.name") or ""
    refs = _typed(meta.get("ownerReferences"), list, "metadata.ownerReferences") or []
    return (namespace, kind, name), refs


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
                                                  f"{_excerpt(item)}"))
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
    parsed page by page; the namespaces (for scope and owner routing); and the ReplicaSets/Jobs/
    ReplicationControllers the pods name (metadata only)."""
    problems: list[Problem] = []
    namespaces = {n.name: n for n in client.list_namespaces(names=settings.namespace)}
    builder = SnapshotBuilder(settings, problems)
    pages = listed = 0
    targets: list[str | None] = list(settings.namespace) or [None]
    for ns in targets:
        for page in client.list_pods(namespace=ns, selector=settings.selector, page_size=settings.page_size):
            pages += 1
            listed += len(page)
            builder.add(page)
            log.progress("pods listed", listed, listed)
    owners: list[dict] = []
    for kind in sorted(builder.owner_kinds):
        try:
            owners.extend(client.list_metadata(kind, namespaces=settings.namespace))
        except Exception as exc:  # noqa: BLE001 - owners only refine names; never fatal
            problems.append(Problem(f"workloads of kind {kind}", f"cannot list them ({exc}); "
                                    "workload names inferred from naming conventions"))
    return builder.finish(owners=owner_index(owners), namespaces=namespaces,
                          cluster=settings.cluster_name or client.cluster_name, source="cluster", pages=pages)
