"""Pods and their owners as the API server lists them (pure): plain JSON dicts in, `Pod` objects out.

Never the kubernetes client's model classes, which are far too slow for 50,000 pods. A field of
the wrong type skips what it belongs to (the pod, a container, an owner) with a Problem saying
which, never a crash. Which pods make up a snapshot is job.snapshot's work.
"""
from __future__ import annotations

import re
import reprlib
from typing import Annotated, Any, Iterable, Mapping, Required, TypedDict

import msgspec

from job.codec import decode_json
from job.image_refs import ImageParseError, resolve_image
from job.model import Container, ContainerKind, ImageRef, Pod, Problem, Workload

_CRONJOB_JOB = re.compile(r"^(.+)-[0-9]{8,}$")
#: Kinds whose owner (one level up) names the workload; listed metadata-only when pods name them.
OWNER_KINDS = ("ReplicaSet", "Job", "ReplicationController")

_KINDS = ((ContainerKind.CONTAINER, "containers", "containerStatuses"),
          (ContainerKind.INIT, "initContainers", "initContainerStatuses"),
          (ContainerKind.EPHEMERAL, "ephemeralContainers", "ephemeralContainerStatuses"))


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


def excerpt(value: Any) -> str:
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
                                            f"was skipped: {excerpt(pod)}"))
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
                                                      f"named by convention: {excerpt(item)}"))
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


# --- a page of a pod LIST, decoded into only what parse_pod reads ----------------------------

# The fields parse_pod, top_owner and the snapshot read, with the types the API server gives
# them; every other field (managedFields, env, volumes, probes, conditions: most of a pod) is
# skipped without being built. Names must be there and not empty: parse_pod quotes an item
# without them in full.
_Name = Annotated[str, msgspec.Meta(min_length=1)]


class _OwnerRef(TypedDict, total=False):
    kind: str
    name: str
    controller: bool


class _Meta(TypedDict, total=False):
    name: Required[_Name]
    namespace: Required[_Name]
    uid: str
    labels: dict[str, str]
    ownerReferences: list[_OwnerRef]


class _SpecContainer(TypedDict, total=False):
    name: str
    image: str


class _PullSecret(TypedDict, total=False):
    name: str


class _Spec(TypedDict, total=False):
    containers: list[_SpecContainer]
    initContainers: list[_SpecContainer]
    ephemeralContainers: list[_SpecContainer]
    imagePullSecrets: list[_PullSecret]
    serviceAccountName: str
    serviceAccount: str


class _ContainerStatus(TypedDict, total=False):
    name: str
    image: str
    imageID: str
    containerID: str


class _Status(TypedDict, total=False):
    phase: str
    containerStatuses: list[_ContainerStatus]
    initContainerStatuses: list[_ContainerStatus]
    ephemeralContainerStatuses: list[_ContainerStatus]


class _PodItem(TypedDict, total=False):
    metadata: Required[_Meta]
    spec: _Spec
    status: _Status


_ListMeta = TypedDict("_ListMeta", {"continue": str, "resourceVersion": str}, total=False)


class _PodPage(TypedDict, total=False):
    metadata: _ListMeta
    items: list[_PodItem]


_PAGE = msgspec.json.Decoder(_PodPage)


def decode_pod_page(data: bytes) -> Any:
    """A page of a pod LIST (a PodList's JSON): its `metadata` and its `items` with only the fields
    this module reads, a few times faster than decoding every field and with a fraction of the
    memory. A page with anything else than the API server's types where those fields are (a
    wrong type, a missing or empty name, a null) is decoded in full instead, so that parse_pod
    finds the same items as ever and names what is wrong with them; a page that is not JSON
    raises decode_json's ValueError."""
    try:
        if not data.isascii():
            data.decode()  # JSON is UTF-8 throughout; msgspec checks only the strings it builds
        return _PAGE.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return decode_json(data)
