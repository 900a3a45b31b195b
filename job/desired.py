"""Desired state (pure): the exact ImageManifestVulns that should exist, as docs/compatibility.md says.

One object per (namespace where the image runs, manifest digest). Built from the snapshot and
the scan results only; comparing with what exists is the apply stage's work.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from job.model import (IMV_API_VERSION, IMV_KIND, SEVERITIES, SEVERITY_RANK, Feature, ImageRef, ScanResult, ScanState,
                       Snapshot, Vulnerability)

MANAGED_BY = ("app.kubernetes.io/managed-by", "imvjob")
HASH_ANNOTATION = "imvjob.io/content-hash"
SHRUNK_ANNOTATION = "imvjob.io/shrunk"
#: etcd refuses requests over 1.5 MiB; stay well below, with room for metadata and labels.
MAX_OBJECT_BYTES = 1_000_000
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_COUNT_FIELDS = {name: name[0].lower() + name[1:] + "Count" for name in SEVERITIES}


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


def format_score(score: float) -> str:
    """Go's "%.1f": round half to even on the exact binary value, as Python's % does."""
    return "%.1f" % score


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """The CRD sets minLength 1 on every string: empty strings and empty lists are left out."""
    if value not in ("", None, [], {}):
        target[key] = value


class _Docs:
    """The spec of each manifest, built once and shared by every namespace that runs it, from
    vulnerability and package documents built once too (registries return the same advisory
    objects for every manifest that has them)."""

    def __init__(self, spec_schema: dict[str, Any] | None = None) -> None:
        self.spec_schema = spec_schema
        self.vulnerabilities: dict[int, dict[str, Any]] = {}
        self.features: dict[int, dict[str, Any]] = {}
        self.specs: dict[ImageRef, tuple[dict[str, Any], list[str], bytes, dict[str, Any]]] = {}
        self._keep: list[Any] = []  # the objects whose id() keys the caches stay alive meanwhile

    def vulnerability(self, v: Vulnerability) -> dict[str, Any]:
        doc = self.vulnerabilities.get(id(v))
        if doc is None:
            doc = self.vulnerabilities[id(v)] = vulnerability_doc(v)
            self._keep.append(v)
        return doc

    def feature(self, f: Feature) -> dict[str, Any]:
        doc = self.features.get(id(f))
        if doc is None:
            doc = self.features[id(f)] = feature_doc(f, vulnerability=self.vulnerability)
            self._keep.append(f)
        return doc

    def spec(self, result: ScanResult) -> tuple[dict[str, Any], list[str], bytes, dict[str, Any]]:
        """(spec, shrink steps, canonical JSON of the spec, severity status) of a scanned manifest.
        Kept until forget_specs(): the caller goes manifest by manifest, so that only one
        manifest's canonical JSON (up to a megabyte) is held at a time."""
        found = self.specs.get(result.ref)
        if found is None:
            assert result.report is not None
            features = result.report.vulnerable_features
            spec: dict[str, Any] = {"image": result.ref.image, "manifest": result.ref.digest}
            _put(spec, "namespaceName", result.report.namespace_name)
            spec["features"] = [self.feature(f) for f in features]
            if self.spec_schema is not None:
                spec = prune_to_schema(spec, self.spec_schema)
            spec, shrunk = shrink(spec)
            found = self.specs[result.ref] = (spec, shrunk, _canonical(spec), severity_status(features))
        return found

    def forget_specs(self) -> None:
        self.specs.clear()


def prune_to_schema(doc: Any, schema: Any) -> Any:
    """Pure: `doc` as the API server stores it under a structural schema, which drops the fields the
    schema does not name (the operator bundle's CRD has no place for a feature's basescores and
    cveids). Comparing what exists with that, not with what was sent, keeps reruns write-free."""
    if not isinstance(schema, dict):
        return doc
    if isinstance(doc, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return doc
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(properties, dict):
            return {k: prune_to_schema(v, properties[k]) for k, v in doc.items() if k in properties}
        if isinstance(extra, dict):
            return {k: prune_to_schema(v, extra) for k, v in doc.items()}
        return doc if extra is True else {}
    if isinstance(doc, list):
        return [prune_to_schema(v, schema.get("items")) for v in doc]
    return doc


def vulnerability_doc(v: Vulnerability) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    _put(doc, "name", v.name)
    _put(doc, "namespaceName", v.namespace_name)
    _put(doc, "description", v.description)
    _put(doc, "link", v.link)
    _put(doc, "fixedby", v.fixed_by)
    _put(doc, "severity", v.severity)
    if v.metadata is not None:
        _put(doc, "metadata", json.dumps(v.metadata, separators=(",", ":"), ensure_ascii=False))
    return doc


def feature_doc(f: Feature, *, vulnerability: Callable[[Vulnerability], dict[str, Any]] = vulnerability_doc
                ) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    _put(doc, "name", f.name)
    _put(doc, "versionformat", f.version_format)
    _put(doc, "namespaceName", f.namespace_name)
    _put(doc, "version", f.version)
    _put(doc, "vulnerabilities", [vulnerability(v) for v in f.vulnerabilities])
    _put(doc, "basescores", [format_score(s) for s in f.base_scores])
    _put(doc, "cveids", [c for c in f.cve_ids if c])
    return doc


def severity_status(features: Iterable[Feature]) -> dict[str, Any]:
    """Counts of vulnerability entries per severity (entries, not distinct names), fixable entries,
    and the highest severity; zero counts left out."""
    counts = dict.fromkeys(SEVERITIES, 0)
    fixable = 0
    for feature in features:
        for v in feature.vulnerabilities:
            counts[v.severity if v.severity in counts else "Unknown"] += 1
            fixable += bool(v.fixed_by)
    status: dict[str, Any] = {}
    present = [s for s in SEVERITIES if counts[s]]
    if present:
        status["highestSeverity"] = max(present, key=SEVERITY_RANK.__getitem__)
    for severity in SEVERITIES:
        if counts[severity]:
            status[_COUNT_FIELDS[severity]] = counts[severity]
    if fixable:
        status["fixableCount"] = fixable
    return status


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(labels: dict[str, str], spec: dict[str, Any], status: dict[str, Any], *,
                 spec_json: bytes | None = None) -> str:
    """sha256 of the canonical JSON of [labels, spec, status]. `spec_json` is _canonical(spec)
    when the caller has it already (a spec shared by the namespaces that run one manifest)."""
    digest = hashlib.sha256(b"[")
    digest.update(_canonical(labels))
    digest.update(b",")
    digest.update(spec_json if spec_json is not None else _canonical(spec))
    digest.update(b",")
    digest.update(_canonical(status))
    digest.update(b"]")
    return digest.hexdigest()[:32]


def pod_labels(affected_pods: dict[str, list[str]]) -> dict[str, str]:
    labels = {}
    for key in affected_pods:
        namespace, _, pod = key.partition("/")
        if pod_label_ok(namespace, pod):
            labels[key] = "true"
    return labels


def shrink(spec: dict[str, Any], limit: int = MAX_OBJECT_BYTES) -> tuple[dict[str, Any], list[str]]:
    """Make a too-large spec fit, predictably: descriptions shortened, then dropped, then metadata
    dropped, then vulnerability entries left out from the least severe up, so that every entry of
    a severity that fits is kept before any entry of a lower one. Returns the spec and the steps
    taken; a step `left-out:Critical=3;Low=1334` counts the entries left out per severity."""
    steps: list[str] = []
    if _size(spec) <= limit:
        return spec, steps
    spec = json.loads(json.dumps(spec))

    def each_vuln() -> Iterable[dict[str, Any]]:
        for feature in spec.get("features", []):
            yield from feature.get("vulnerabilities", [])

    for v in each_vuln():
        if len(v.get("description", "")) > 200:
            v["description"] = v["description"][:199] + "…"
    steps.append("descriptions-shortened")
    if _size(spec) > limit:
        for v in each_vuln():
            v.pop("description", None)
        steps[-1] = "descriptions"
    if _size(spec) > limit:
        for v in each_vuln():
            v.pop("metadata", None)
        steps.append("metadata")
    if _size(spec) > limit:
        spec, left_out = _keep_most_severe(spec, limit)
        steps.append("left-out:" + ";".join(f"{s}={n}" for s, n in sorted(
            left_out.items(), key=lambda item: -SEVERITY_RANK.get(item[0], 0))))
    return spec, steps


def _size(doc: Any) -> int:
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def left_out_counts(steps: Iterable[str]) -> dict[str, int]:
    """Pure: {severity: entries left out} from shrink()'s steps (or the shrunk annotation's value)."""
    for step in steps:
        if step.startswith("left-out:"):
            pairs = (item.partition("=") for item in step[len("left-out:"):].split(";") if item)
            return {severity: int(count) for severity, _, count in pairs if count.isdigit()}
    return {}


def _keep_most_severe(spec: dict[str, Any], limit: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Entries added most severe first (in report order within a severity) while the spec still
    fits; an entry too large to fit is left out and the next ones are still tried. Sizes are added
    up exactly as compact JSON encodes them, so only one encoding of each part is made."""
    features = spec.get("features", [])
    base = {k: v for k, v in spec.items() if k != "features"}
    budget = limit - _size(base) - len(',"features":[]')
    # The cost of a feature without its entries: its other fields plus `"vulnerabilities":[]`.
    bare = [_size({k: v for k, v in f.items() if k != "vulnerabilities"}) + len(',"vulnerabilities":[]')
            for f in features]
    entries = [(-SEVERITY_RANK.get(v.get("severity", "Unknown"), 0), fi, vi)
               for fi, f in enumerate(features) for vi, v in enumerate(f.get("vulnerabilities", []))]
    kept: dict[int, list[int]] = {}
    used, left_out = 0, Counter()
    for _, fi, vi in sorted(entries):
        vuln = features[fi]["vulnerabilities"][vi]
        cost = _size(vuln) + (len(kept[fi]) > 0 if fi in kept else bare[fi] + (len(kept) > 0))
        if used + cost <= budget:
            used += cost
            kept.setdefault(fi, []).append(vi)
        else:
            left_out[vuln.get("severity", "Unknown")] += 1
    out = dict(base)
    kept_features = [{**features[fi], "vulnerabilities": [features[fi]["vulnerabilities"][vi]
                                                          for vi in sorted(kept[fi])]} for fi in sorted(kept)]
    if kept_features:
        out["features"] = kept_features
    return out, dict(left_out)


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
    docs = _Docs(spec_schema)
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
