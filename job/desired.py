"""Desired state (pure): the exact ImageManifestVulns that should exist, as docs/compatibility.md says.

One object per (namespace where the image runs, manifest digest). Built from the snapshot and
the scan results only; comparing with what exists is the apply stage's work.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from job.imv_spec import Specs, canonical_json
from job.model import IMV_API_VERSION, IMV_KIND, ImageRef, ScanResult, ScanState, Snapshot

MANAGED_BY = ("app.kubernetes.io/managed-by", "imvjob")
HASH_ANNOTATION = "imvjob.io/content-hash"
SHRUNK_ANNOTATION = "imvjob.io/shrunk"
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


@dataclass(slots=True)
class DesiredObject:
    namespace: str
    name: str
    ref: ImageRef
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    status: dict[str, Any]  # without lastUpdate: that is stamped when written
    content_hash: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def manifest(self, last_update: str) -> dict[str, Any]:
        """The full object, as created (and as written to the offline YAML)."""
        return {"apiVersion": IMV_API_VERSION, "kind": IMV_KIND,
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels),
                             "annotations": dict(self.annotations)},
                "spec": self.spec, "status": {**self.status, "lastUpdate": last_update}}


@dataclass(slots=True)
class KeptObject:
    """A manifest that still runs but whose scan did not succeed this run: its existing object (if
    any) keeps its content; only the pods that run it are brought up to date."""

    namespace: str
    name: str
    ref: ImageRef
    state: ScanState
    affected_pods: dict[str, list[str]]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class DesiredState:
    objects: dict[str, DesiredObject] = field(default_factory=dict)  # by "namespace/name"
    kept: dict[str, KeptObject] = field(default_factory=dict)
    #: Manifests that run and were scanned clean: no object (as CSO does).
    clean: set[str] = field(default_factory=set)
    #: Namespaces the run owns (None: all); objects elsewhere are never touched.
    scope: tuple[str, ...] | None = None
    shard: tuple[int, int] | None = None
    last_update: str = ""
    #: Pods a label selector listed (None: no selector, every running pod of the scope was listed).
    listed: frozenset[str] | None = None
    #: Pods, namespaces and "*" the run saw but could not read in full (Snapshot.unsure).
    unsure: frozenset[str] = frozenset()
    #: The namespaces of `unsure`, derived once: narrowed() is asked for every existing object.
    unsure_namespaces: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        self.unsure_namespaces = frozenset(u.partition("/")[0] for u in self.unsure)

    def sees(self, pod_key: str) -> bool:
        """Whether the run knows for sure what this pod ("ns/pod") runs: only then may an object drop it
        from affectedPods (or be deleted for it). A pod a selector did not list, or one that could not
        be read, may still run anything."""
        if self.unsure and ("*" in self.unsure or pod_key in self.unsure
                            or pod_key.partition("/")[0] in self.unsure):
            return False  # the pod itself, its namespace (an item without a name), or all
        return self.listed is None or pod_key in self.listed

    def narrowed(self, namespace: str) -> bool:
        """Whether some pods of the namespace may run manifests the run does not know of."""
        return self.listed is not None or "*" in self.unsure or namespace in self.unsure_namespaces

    def owns(self, namespace: str, name: str) -> bool:
        """Whether an existing object is this run's to update or delete."""
        if self.scope is not None and namespace not in self.scope:
            return False
        return self.shard is None or shard_index(name, self.shard[1]) == self.shard[0]


# --- small pure helpers -------------------------------------------------------------------


def go_time_string(when: dt.datetime) -> str:
    """Go's time.Time.String() of a UTC time: `2019-12-27 22:00:48.328470155 +0000 UTC` (trailing
    zeros of the fraction trimmed, no fraction at all when it is zero), which CSO parses back."""
    when = when.astimezone(dt.timezone.utc)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.microsecond:
        text += "." + f"{when.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def shard_index(name: str, shards: int) -> int:
    """Shard of a manifest (by its object name or digest): stable across runs and machines."""
    digest_hex = name.split(".", 1)[-1].split(":", 1)[-1]
    try:
        return int(digest_hex[:15], 16) % shards
    except ValueError:
        return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16) % shards


def pod_label_ok(namespace: str, pod: str) -> bool:
    """`<ns>/<pod>` is a valid label name only when the pod name fits a label name (63 characters)."""
    return len(pod) <= 63 and bool(_LABEL_NAME.match(pod)) and len(namespace) <= 253


def content_hash(labels: dict[str, str], spec: dict[str, Any], status: dict[str, Any], *,
                 spec_json: bytes | None = None) -> str:
    """sha256 of the canonical JSON of [labels, spec, status]. `spec_json` is canonical_json(spec)
    when the caller has it already (a spec shared by the namespaces that run one manifest)."""
    digest = hashlib.sha256(b"[")
    digest.update(canonical_json(labels))
    digest.update(b",")
    digest.update(spec_json if spec_json is not None else canonical_json(spec))
    digest.update(b",")
    digest.update(canonical_json(status))
    digest.update(b"]")
    return digest.hexdigest()[:32]


def pod_labels(affected_pods: dict[str, list[str]]) -> dict[str, str]:
    labels = {}
    for key in affected_pods:
        namespace, _, pod = key.partition("/")
        if pod_label_ok(namespace, pod):
            labels[key] = "true"
    return labels


# --- the desired state ---------------------------------------------------------------------


def desired_object(namespace: str, name: str, ref: ImageRef, *, spec: dict[str, Any], shrunk: list[str],
                   counts: dict[str, Any], affected: dict[str, list[str]], spec_json: bytes | None = None
                   ) -> DesiredObject:
    """One object: its labels, status and content hash follow from the spec and the pods."""
    status = {**counts, "affectedPods": affected}
    labels = {MANAGED_BY[0]: MANAGED_BY[1], **pod_labels(affected)}
    annotations = {HASH_ANNOTATION: content_hash(labels, spec, status, spec_json=spec_json)}
    if shrunk:
        annotations[SHRUNK_ANNOTATION] = ",".join(shrunk)
    return DesiredObject(namespace, name, ref, labels, annotations, spec, status, annotations[HASH_ANNOTATION])


def with_pods(obj: DesiredObject, affected: dict[str, list[str]]) -> DesiredObject:
    """The same object run by other pods (a narrowed run keeps the pods it did not look at)."""
    counts = {k: v for k, v in obj.status.items() if k != "affectedPods"}
    shrunk = [step for step in obj.annotations.get(SHRUNK_ANNOTATION, "").split(",") if step]
    return desired_object(obj.namespace, obj.name, obj.ref, spec=obj.spec, shrunk=shrunk, counts=counts,
                          affected={k: affected[k] for k in sorted(affected)})


def _choose(results: list[ScanResult]) -> ScanResult:
    """Among the repositories that serve one digest in one namespace, a successful scan wins."""
    return sorted(results, key=lambda r: (r.state is not ScanState.SCANNED, r.ref))[0]


def desired_state(snap: Snapshot, results: dict[ImageRef, ScanResult], *, now: dt.datetime,
                  shard: tuple[int, int] | None = None, spec_schema: dict[str, Any] | None = None) -> DesiredState:
    """`spec_schema`: the installed CRD's schema of spec, when known: specs are built as it stores them."""
    state = DesiredState(scope=snap.scope, shard=shard, last_update=go_time_string(now),
                         listed=frozenset(p.key for p in snap.pods) if snap.selector else None,
                         unsure=frozenset(snap.unsure))
    docs = Specs(spec_schema)
    # (namespace, digest) → refs seen and {pod key: container IDs}
    groups: dict[tuple[str, str], tuple[set[ImageRef], dict[str, list[str]]]] = {}
    for pod in snap.pods:
        for container in pod.containers:
            if container.ref is None:
                continue
            refs, pods = groups.setdefault((pod.namespace, container.ref.digest), (set(), {}))
            refs.add(container.ref)
            ids = pods.setdefault(pod.key, [])
            if container.container_id and container.container_id not in ids:
                ids.append(container.container_id)
    objects: dict[tuple[str, str], DesiredObject] = {}
    kept: dict[tuple[str, str], KeptObject] = {}
    digest_now = ""
    # Manifest by manifest (then namespace by namespace): a spec is built and encoded once for
    # all the namespaces that run it.
    for namespace, digest in sorted(groups, key=lambda group: (group[1], group[0])):
        if digest != digest_now:
            docs.forget_specs()
            digest_now = digest
        refs, affected = groups[(namespace, digest)]
        name = digest.replace(":", ".")
        if not state.owns(namespace, name):
            continue
        affected = {k: sorted(v) for k, v in sorted(affected.items())}
        candidates = [results[r] for r in refs if r in results]
        key = f"{namespace}/{name}"
        if not candidates:
            ref = min(refs)
            kept[(namespace, digest)] = KeptObject(namespace, name, ref, ScanState.ERROR, affected)
            continue
        result = _choose(candidates)
        if result.state is not ScanState.SCANNED or result.report is None:
            kept[(namespace, digest)] = KeptObject(namespace, name, result.ref, result.state, affected)
            continue
        if not any(f.vulnerabilities for f in result.report.features):
            state.clean.add(key)
            continue
        # Shared by every namespace that runs this manifest: never modified once built.
        spec, shrunk, spec_json, counts = docs.spec(result)
        objects[(namespace, digest)] = desired_object(namespace, name, result.ref, spec=spec, shrunk=shrunk,
                                                      counts=counts, affected=affected, spec_json=spec_json)
    docs.forget_specs()
    state.objects = {obj.key: obj for _, obj in sorted(objects.items())}
    state.kept = {obj.key: obj for _, obj in sorted(kept.items())}
    return state
