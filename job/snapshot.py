"""Snapshot: every running pod, its containers' image manifests and its workload.

The parsing here is pure: it takes pod JSON as the API server (or `kubectl get pods -A -o json`)
returns it, as plain dicts, and never the kubernetes client's model classes, which are far too
slow for 50,000 pods. The live LIST calls are in job.kube.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from job.codec import gc_paused
from job.errors import ConfigError
from job.log import RunLog
from job.model import Container, ContainerKind, ImageRef, Namespace, Pod, Problem, Snapshot, Workload
from job.settings import Settings

_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_BARE_HEX = re.compile(r"^[0-9a-f]{64}$")
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                   r"(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")
_CRONJOB_JOB = re.compile(r"^(.+)-[0-9]{8,}$")
#: Kinds whose owner (one level up) names the workload; listed metadata-only when pods name them.
OWNER_KINDS = ("ReplicaSet", "Job", "ReplicationController")
_RUNTIME_PREFIXES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")
#: Docker Hub has several names; the ImageManifestVuln uses the canonical one.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_KINDS = ((ContainerKind.CONTAINER, "containers", "containerStatuses"),
          (ContainerKind.INIT, "initContainers", "initContainerStatuses"),
          (ContainerKind.EPHEMERAL, "ephemeralContainers", "ephemeralContainerStatuses"))


class ImageParseError(ValueError):
    pass


def parse_reference(reference: str) -> tuple[str, str, str]:
    """Split an image reference into (host, repository, digest or ""), Docker Hub names expanded.

    `nginx` → docker.io/library/nginx; `team/app:1` → docker.io/team/app; a first component with a
    dot or a port, or `localhost`, is a registry host. The tag is dropped.
    """
    ref = reference.strip()
    if not ref or any(ch.isspace() for ch in ref):
        raise ImageParseError(f"not an image reference: {reference!r}")
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not _DIGEST.match(digest):
            raise ImageParseError(f"not a manifest digest: {digest!r}")
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, path = first, rest
        if not _HOST.match(host):
            raise ImageParseError(f"not a registry host: {host!r}")
    else:
        host, path = DOCKER_HUB, ref
    if host.lower() in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    # A tag follows the last ':' after the last '/'.
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path = path[:colon]
    if host == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    if not path or not all(_REPO_COMPONENT.match(part) for part in path.split("/")):
        raise ImageParseError(f"not a repository path: {path!r}")
    return host, path, digest


def resolve_image(image_id: str, image: str, *alternatives: str) -> ImageRef:
    """The manifest a container runs, from its status's imageID, else a digest-pinned image reference.

    Runtimes write imageID as `docker-pullable://host/repo@sha256:…` (Docker),
    `host/repo@sha256:…` (containerd, CRI-O), or a bare `sha256:…` / hex image ID, which names the
    image's config, not its manifest: then only an image reference pinned by digest tells the manifest.
    """
    image_id = image_id.strip()
    for prefix in _RUNTIME_PREFIXES:
        if image_id.startswith(prefix):
            image_id = image_id[len(prefix):]
            break
    if "@" in image_id:
        host, repository, digest = parse_reference(image_id)
        return ImageRef(host, repository, digest)
    if image_id and not (_DIGEST.match(image_id) or _BARE_HEX.match(image_id)):
        raise ImageParseError(f"imageID {image_id!r} names no manifest digest")
    for candidate in (image, *alternatives):
        if candidate and "@" in candidate:
            host, repository, digest = parse_reference(candidate)
            return ImageRef(host, repository, digest)
    raise ImageParseError("the runtime reports only an image ID (not a manifest digest) and the image "
                          f"{image or '?'} is not pinned by digest")


# --- pods ----------------------------------------------------------------------------------


def controller_of(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the pod's controller owner (else its first owner), or None."""
    refs = meta.get("ownerReferences") or []
    controller = next((r for r in refs if isinstance(r, dict) and r.get("controller")), None)
    if controller is None:
        controller = next((r for r in refs if isinstance(r, dict)), None)
    if controller is None or not controller.get("kind") or not controller.get("name"):
        return None
    return str(controller["kind"]), str(controller["name"])


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
    labels = meta.get("labels") or {}
    if kind == "ReplicaSet":
        template_hash = labels.get("pod-template-hash")
        if template_hash and name.endswith("-" + template_hash):
            return Workload("Deployment", name[: -len(template_hash) - 1])
    elif kind == "Job":
        # CronJobs name their Jobs <cronjob>-<scheduled time in minutes>.
        match = _CRONJOB_JOB.match(name)
        if match:
            return Workload("CronJob", match.group(1))
    elif kind == "ReplicationController":
        dc_name = labels.get("openshift.io/deployment-config.name")
        if dc_name:
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


def parse_pod(pod: Mapping[str, Any], owners: Mapping[tuple[str, str, str], tuple[str, str]],
              problems: list[Problem], *, cache: ParseCache | None = None) -> Pod | None:
    """One running pod, or None (not running, or malformed: then a Problem is recorded)."""
    meta = pod.get("metadata")
    status = pod.get("status")
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("namespace"):
        problems.append(Problem("pod list", f"an item without metadata.name/namespace was skipped: "
                                            f"{json.dumps(pod, default=str)[:120]}"))
        return None
    where = f"{meta['namespace']}/{meta['name']}"
    if not isinstance(status, dict):
        problems.append(Problem(where, "pod without status, skipped"))
        return None
    if status.get("phase") != "Running":
        return None
    cache = cache if cache is not None else ParseCache()
    text = cache.text
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    containers: list[Container] = []
    for kind, spec_key, status_key in _KINDS:
        statuses = status.get(status_key)
        if not statuses:
            continue
        spec_images = {c.get("name"): c.get("image", "") for c in (spec.get(spec_key) or []) if isinstance(c, dict)}
        for cs in statuses:
            if not isinstance(cs, dict) or not cs.get("name"):
                problems.append(Problem(where, f"malformed {status_key} entry skipped"))
                continue
            image_id = str(cs.get("imageID") or "")
            if not image_id:
                continue  # never started: nothing of it has run yet
            spec_image = str(spec_images.get(cs["name"]) or "")
            status_image = str(cs.get("image") or "")
            try:
                ref: ImageRef | None = cache.resolve(image_id, status_image, spec_image)
                problem = ""
            except ImageParseError as exc:
                ref, problem = None, str(exc)
                problems.append(Problem(f"{where} container {cs['name']}", problem))
            containers.append(Container(name=text(str(cs["name"])), kind=kind, image=text(spec_image or status_image),
                                        container_id=str(cs.get("containerID") or ""), ref=ref,
                                        problem=problem))
    pull_secrets = tuple(text(str(s["name"])) for s in spec.get("imagePullSecrets") or []
                         if isinstance(s, dict) and s.get("name"))
    return Pod(namespace=text(str(meta["namespace"])), name=str(meta["name"]), uid=str(meta.get("uid", "")),
               workload=cache.workload(top_owner(meta, owners)),
               service_account=text(str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")),
               pull_secrets=pull_secrets, containers=tuple(containers))


def owner_index(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], tuple[str, str]]:
    """{(namespace, kind, name): (owner kind, owner name)} from ReplicaSets, Jobs, ReplicationControllers
    (full objects or metadata-only ones), for the objects that have a controller owner."""
    index: dict[tuple[str, str, str], tuple[str, str]] = {}
    for item in items:
        meta = item.get("metadata") or {}
        kind = item.get("kind") or ""
        for ref in meta.get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") and ref.get("name"):
                index[(meta.get("namespace", ""), kind, meta.get("name", ""))] = (ref["kind"], ref["name"])
    return index


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

    def add(self, pod_items: Iterable[Any]) -> None:
        with gc_paused():  # tens of thousands of new objects per page, none in a cycle
            self._add(pod_items)

    def _add(self, pod_items: Iterable[Any]) -> None:
        for item in pod_items:
            if not isinstance(item, dict):
                self.problems.append(Problem("pod list", "an item that is not an object was skipped"))
                continue
            pod = parse_pod(item, {}, self.problems, cache=self._cache)
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
                        scope=scope_of(self.settings, list(namespaces) + [p.namespace for p in pods]))


def build_snapshot(pod_items: Iterable[Mapping[str, Any]], *, settings: Settings, owners: Mapping,
                   namespaces: Mapping[str, Namespace], cluster: str, source: str, pages: int,
                   problems: list[Problem] | None = None) -> Snapshot:
    builder = SnapshotBuilder(settings, problems)
    builder.add(pod_items)
    return builder.finish(owners=owners, namespaces=namespaces, cluster=cluster, source=source, pages=pages)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- offline input -------------------------------------------------------------------------


def _matches_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Equality- and set-based label selectors, as `kubectl -l` takes them."""
    for term in _split_selector(selector):
        term = term.strip()
        if not term:
            continue
        m = re.match(r"^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$", term)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            present = key in labels and labels[key] in values
            if (op == "in") != present:
                return False
            continue
        m = re.match(r"^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$", term)
        if m:
            key, op, value = m.groups()
            equal = labels.get(key) == value
            if (op == "!=") == equal:
                return False
            continue
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_selector(selector: str) -> Iterator[str]:
    depth, start = 0, 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            yield selector[start:i]
            start = i + 1
    yield selector[start:]


def load_pod_list(path: Path, settings: Settings) -> Snapshot:
    """Offline: a `kubectl get pods -A -o json` dump (a List or PodList). If it also holds ReplicaSets,
    Jobs, ReplicationControllers or Namespaces (`kubectl get pods,rs,jobs,ns -A -o json`), they are used
    to find workloads and owners."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read pod list {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"pod list {path} is not JSON: {exc}") from exc
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
    namespaces = {
        n["metadata"]["name"]: Namespace(n["metadata"]["name"], dict(n["metadata"].get("labels") or {}),
                                         dict(n["metadata"].get("annotations") or {}))
        for n in others if n.get("kind") == "Namespace" and isinstance(n.get("metadata"), dict)
        and n["metadata"].get("name")
    }
    if settings.selector:
        pods = [p for p in pods if not isinstance(p, dict)
                or _matches_selector((p.get("metadata") or {}).get("labels") or {}, settings.selector)]
    snap = build_snapshot(pods, settings=settings, owners=owner_index(others), namespaces={},
                          cluster=settings.cluster_name or "offline", source=str(path), pages=1)
    for ns in sorted({p.namespace for p in snap.pods} - set(namespaces)):
        namespaces[ns] = Namespace(ns)
    snap.namespaces = {k: v for k, v in sorted(namespaces.items()) if in_scope(k, settings)}
    return snap


# --- live ----------------------------------------------------------------------------------


def take(client: Any, settings: Settings, log: RunLog) -> Snapshot:
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
