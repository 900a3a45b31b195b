"""Apply: make the cluster's ImageManifestVulns match the desired state with as few writes as possible.

What exists is read as metadata only (one paginated LIST, no large specs); an object whose content
hash annotation matches the desired one is not touched at all. Only objects that differ are read
in full, and then spec and status are written separately (status through its subresource), each
only when it changed. Offline, the desired objects go to a YAML file instead.
"""
from __future__ import annotations

import difflib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from job.cluster import Cluster
from job.desired import HASH_ANNOTATION, MANAGED_BY, SHRUNK_ANNOTATION, DesiredObject, DesiredState, KeptObject, \
    pod_labels, with_pods
from job.errors import Conflict, Invalid, KubeError, NotFound
from job.imv_spec import left_out_counts
from job.log import RunLog
from job.model import IMV_API_VERSION, IMV_KIND, ApplyOutcome, Problem
from job.settings import Settings
from job.writers import Writers, status_digest, status_paths

_CONFLICT_RETRIES = 3


def _is_pod_label(key: str, value: str) -> bool:
    """Pod labels are `<namespace>/<pod>: "true"`; namespaces never contain dots, label prefixes
    such as app.kubernetes.io always do."""
    prefix, sep, _ = key.partition("/")
    return bool(sep) and value == "true" and "." not in prefix


def merged_labels(existing: dict[str, str], desired: dict[str, str]) -> dict[str, str]:
    """Other writers' labels stay; pod labels and ours follow the desired state."""
    kept = {k: v for k, v in existing.items() if not _is_pod_label(k, v) and k != MANAGED_BY[0]}
    return {**kept, **desired}


def hash_value(content_hash: str, generation: Any) -> str:
    """The hash annotation: the content hash and the generation the spec had once written, so that
    a later change of the spec by anyone (which bumps the generation) voids it."""
    return f"{content_hash}:{generation}"


def vouched(meta: dict[str, Any], obj: DesiredObject) -> bool:
    """Pure: whether an object, known by its metadata alone, certainly holds `obj`'s content, so that
    it needs neither a full read nor a write. Spec: the hash annotation names the desired content
    and the current generation. Labels and our annotations: compared as they are. Status: the
    fields that exist are the desired ones, and no one else changed any since the job last did."""
    annotations = meta.get("annotations") or {}
    if annotations.get(HASH_ANNOTATION) != hash_value(obj.content_hash, meta.get("generation")):
        return False
    if annotations.get(SHRUNK_ANNOTATION) != obj.annotations.get(SHRUNK_ANNOTATION):
        return False
    labels = meta.get("labels") or {}
    if {k for k, v in labels.items() if _is_pod_label(k, v)} != {k for k in obj.labels if k != MANAGED_BY[0]} \
            or labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
        return False
    writers = meta.get("writers")
    if not isinstance(writers, Writers) or not writers.ours or writers.others_status >= writers.ours:
        return False
    return writers.status_fields == status_digest(status_paths(obj.status))


def merge_patch(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    """Pure: the JSON merge patch (RFC 7386) that turns `old` into `new`: changed keys, removed ones
    as null, maps patched key by key, anything else (lists included) replaced whole."""
    old = old if isinstance(old, dict) else {}
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            if sub := merge_patch(old[key], value):
                patch[key] = sub
        elif key not in old or old[key] != value:
            patch[key] = value
    return patch


def _status_without_time(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (obj.get("status") or {}).items() if k != "lastUpdate"}


def _view(labels: dict[str, str], spec: dict[str, Any] | None, status: dict[str, Any]) -> str:
    return json.dumps({"labels": labels, "spec": spec, "status": status}, indent=1, sort_keys=True,
                      ensure_ascii=False)


def diff_text(key: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        fromfile=f"{key} (cluster)", tofile=f"{key} (desired)", n=2))


class _Applier:
    def __init__(self, state: DesiredState, kube: Cluster, settings: Settings, outcome: ApplyOutcome) -> None:
        self.state, self.kube, self.settings, self.outcome = state, kube, settings, outcome
        self.dry_run = settings.check

    # Each task returns the name of the ApplyOutcome list its object goes to.

    def _write(self, current: dict[str, Any], *, labels: dict[str, str], annotations: dict[str, str],
               spec: Any) -> dict[str, Any]:
        """The object's labels, annotations and spec as one JSON merge patch of what differs, under the
        same resourceVersion: a few hundred bytes unless the spec changes."""
        meta = current["metadata"]
        patch: dict[str, Any] = {"metadata": {"resourceVersion": meta["resourceVersion"]}}
        for key, new in (("labels", labels), ("annotations", annotations)):
            if changed := merge_patch(meta.get(key), new):
                patch["metadata"][key] = changed
        if changed := merge_patch(current.get("spec"), spec):
            patch["spec"] = changed
        return self.kube.patch_imv(meta["namespace"], meta["name"], patch, dry_run=self.dry_run)

    def _put_status(self, current: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        meta = current["metadata"]
        body = {"apiVersion": IMV_API_VERSION, "kind": IMV_KIND,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "resourceVersion": meta["resourceVersion"]},
                "status": {**status, "lastUpdate": self.state.last_update}}
        return self.kube.update_imv_status(body, dry_run=self.dry_run)

    def _converge(self, current: dict[str, Any], *, labels: dict[str, str], annotations: dict[str, str],
                  spec: Any, status: dict[str, Any]) -> bool:
        """Write what differs, in an order that keeps two promises at every moment in between:
        every pod label has its key in status.affectedPods (the console's pod tab breaks
        otherwise), and no hash annotation vouches for content the object does not hold: a run
        cut short between two writes leaves no hash at all, so the next run compares in full.
        The spec comes last, with the new pod labels and the hash: etcd stores the whole object
        again for every write (until the API server compacts), and the spec is nearly all of it.
        `annotations` carries the bare content hash; the written one also names the generation."""
        bare = {k: v for k, v in annotations.items() if k != HASH_ANNOTATION}
        content = annotations.get(HASH_ANNOTATION, "")

        def vouching(generation: Any) -> dict[str, str]:
            return {**bare, HASH_ANNOTATION: hash_value(content, generation)} if content else bare

        wrote = _status_without_time(current) != status
        if wrote:
            # Before the status: the pod labels it drops removed (the new ones not yet added), no hash.
            old_labels = current["metadata"].get("labels") or {}
            interim = {k: v for k, v in labels.items() if k in old_labels or not _is_pod_label(k, v)}
            if (interim, bare) != (old_labels, current["metadata"].get("annotations") or {}):
                current = {**current, **self._write(current, labels=interim, annotations=bare,
                                                    spec=current.get("spec"))}
            current = {**current, **self._put_status(current, status)}
        meta = current["metadata"]
        # The server bumps the generation when the spec changes: predicted here, checked below.
        generation = int(meta.get("generation") or 0) + (current.get("spec") != spec)
        if (labels, vouching(generation), spec) == (meta.get("labels") or {}, meta.get("annotations") or {},
                                                    current.get("spec")):
            return wrote
        written = self._write(current, labels=labels, annotations=vouching(generation), spec=spec)
        if content and written["metadata"].get("generation") != generation:
            self._write({**written, "spec": spec}, labels=labels,
                        annotations=vouching(written["metadata"].get("generation")), spec=spec)
        return True

    def _retrying(self, key: str, attempt: Callable[[dict[str, Any]], bool], first: dict[str, Any]) -> str:
        """Run one object's writes; on a conflict, read it again and redo them."""
        for tries in range(_CONFLICT_RETRIES):
            current = first if tries == 0 and "spec" in first else \
                self.kube.get_imv(first["metadata"]["namespace"], first["metadata"]["name"])
            try:
                return "updated" if attempt(current) else "unchanged"
            except Conflict:
                continue
        raise Conflict(f"{key}: still changing under us after {_CONFLICT_RETRIES} tries")

    def create(self, obj: DesiredObject) -> str:
        """Created bare (no pod labels, no hash, no features), then brought to the desired content like any
        other: its status, then its features with its pod labels and hash, so that etcd stores the features
        once; until then no pod's labels lead to it. A dry run sends it whole, for the server to validate."""
        spec = obj.spec if self.dry_run else {k: v for k, v in obj.spec.items() if k != "features"}
        bare = {"apiVersion": IMV_API_VERSION, "kind": IMV_KIND,
                "metadata": {"name": obj.name, "namespace": obj.namespace,
                             "labels": {k: v for k, v in obj.labels.items() if not _is_pod_label(k, v)},
                             "annotations": {k: v for k, v in obj.annotations.items() if k != HASH_ANNOTATION}},
                "spec": spec}
        # The server answers writes with metadata only; the rest is what was just sent.
        created = {**bare, "metadata": self.kube.create_imv(bare, dry_run=self.dry_run)["metadata"]}
        if self.settings.diff:
            self.outcome.diffs[obj.key] = diff_text(obj.key, "", _view(obj.labels, obj.spec, obj.status))
        if not self.dry_run:  # a dry-run create leaves nothing to write a status to
            self._retrying(obj.key, lambda current: self._converge(
                current, labels=obj.labels, annotations=obj.annotations, spec=obj.spec, status=obj.status), created)
        return "created"

    def _with_unseen(self, current: dict[str, Any], affected: dict[str, list[str]]) -> dict[str, list[str]]:
        """The pods the run knows run the manifest, plus the object's pods that the run cannot see
        (a selector did not list them, or they could not be read): those it has no right to drop."""
        old = (current.get("status") or {}).get("affectedPods")
        if not isinstance(old, dict):
            return affected
        unseen = {k: [i for i in v if isinstance(i, str)] if isinstance(v, list) else []
                  for k, v in old.items() if isinstance(k, str) and k not in affected and not self.state.sees(k)}
        if not unseen:
            return affected
        merged = {**unseen, **affected}
        return {k: merged[k] for k in sorted(merged)}

    def update(self, obj: DesiredObject, existing: dict[str, Any]) -> str:
        """Bring one object to the desired content."""

        def attempt(current: dict[str, Any]) -> bool:
            meta = current["metadata"]
            want = obj
            if self.state.narrowed(obj.namespace):
                affected = self._with_unseen(current, obj.status["affectedPods"])
                if affected != obj.status["affectedPods"]:
                    want = with_pods(obj, affected)
            labels = merged_labels(meta.get("labels") or {}, want.labels)
            annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != SHRUNK_ANNOTATION}
            annotations.update(want.annotations)
            if self.settings.diff:
                before = _view(meta.get("labels") or {}, current.get("spec"), _status_without_time(current))
                after = _view(labels, want.spec, want.status)
                if before != after:
                    self.outcome.diffs[obj.key] = diff_text(obj.key, before, after)
            return self._converge(current, labels=labels, annotations=annotations, spec=want.spec,
                                  status=want.status)

        return self._retrying(obj.key, attempt, existing)

    def _follow_pods(self, key: str, current: dict[str, Any], affected: dict[str, list[str]]) -> bool:
        """Keep what the object says; only its pods follow `affected`."""
        meta = current["metadata"]
        old_labels = meta.get("labels") or {}
        ours = old_labels.get(MANAGED_BY[0]) == MANAGED_BY[1] or self.settings.adopt
        labels = merged_labels(old_labels, {**pod_labels(affected), **(dict([MANAGED_BY]) if ours else {})})
        status = {**_status_without_time(current), "affectedPods": affected}
        if labels == old_labels and status == _status_without_time(current):
            return False
        # The content no longer matches the hash: drop it, so the next scan compares in full.
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HASH_ANNOTATION}
        if self.settings.diff:
            self.outcome.diffs[key] = diff_text(key, _view(old_labels, None, _status_without_time(current)),
                                                _view(labels, None, status))
        return self._converge(current, labels=labels, annotations=annotations, spec=current.get("spec"),
                              status=status)

    def refresh_pods(self, kept: KeptObject, existing: dict[str, Any]) -> str:
        """A manifest not scanned this run: keep what the object says, follow only the pods."""
        self.outcome.kept.append(kept.key)

        def attempt(current: dict[str, Any]) -> bool:
            affected = kept.affected_pods
            if self.state.narrowed(kept.namespace):
                affected = self._with_unseen(current, affected)
            return self._follow_pods(kept.key, current, affected)

        return self._retrying(kept.key, attempt, {"metadata": existing["metadata"]})

    def delete(self, key: str, meta: dict[str, Any]) -> str:
        if self.settings.diff:
            self.outcome.diffs[key] = diff_text(key, f"{key}\n", "")
        self.kube.delete_imv(meta["namespace"], meta["name"], dry_run=self.dry_run)
        return "deleted"

    def prune(self, key: str, meta: dict[str, Any]) -> str:
        """A narrowed run, and no pod it knows of runs the manifest: the object goes only if none of its
        pods is one the run cannot see; otherwise it stays, with just those pods."""
        for _ in range(_CONFLICT_RETRIES):
            try:
                current = self.kube.get_imv(meta["namespace"], meta["name"])
            except NotFound:
                return "deleted"
            unseen = self._with_unseen(current, {})
            try:
                if not unseen:
                    if self.settings.diff:
                        self.outcome.diffs[key] = diff_text(key, f"{key}\n", "")
                    self.kube.delete_imv(meta["namespace"], meta["name"], dry_run=self.dry_run,
                                         resource_version=current["metadata"]["resourceVersion"])
                    return "deleted"
                return "updated" if self._follow_pods(key, current, unseen) else "unchanged"
            except Conflict:
                continue
        raise Conflict(f"{key}: still changing under us after {_CONFLICT_RETRIES} tries")


def plan(state: DesiredState, existing: list[dict[str, Any]], *, adopt: bool
         ) -> tuple[list[tuple[str, Callable[[ "_Applier"], str]]], ApplyOutcome]:
    """Pure: which task each object needs, from the desired state and the existing objects' metadata."""
    outcome = ApplyOutcome()
    tasks: list[tuple[str, Callable[[_Applier], str]]] = []
    seen: set[str] = set()
    for item in sorted(existing, key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"])):
        meta = item["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        if not state.owns(meta["namespace"], meta["name"]):
            continue
        seen.add(key)
        ours = (meta.get("labels") or {}).get(MANAGED_BY[0]) == MANAGED_BY[1]
        if not ours and not adopt:
            outcome.unmanaged.append(key)
            continue
        desired, kept = state.objects.get(key), state.kept.get(key)
        if desired is not None:
            if ours and vouched(meta, desired):
                outcome.unchanged.append(key)
            else:
                tasks.append((key, lambda a, d=desired, m=item: a.update(d, m)))
        elif kept is not None:
            tasks.append((key, lambda a, k=kept, m=item: a.refresh_pods(k, m)))
        elif key in state.clean or not state.narrowed(meta["namespace"]):
            # Scanned clean this run, or no pod of the namespace runs it any more.
            tasks.append((key, lambda a, k=key, m=meta: a.delete(k, m)))
        else:  # no pod the run knows of runs it; one it cannot see may
            tasks.append((key, lambda a, k=key, m=meta: a.prune(k, m)))
    for key, desired in state.objects.items():
        if key not in seen:
            tasks.append((key, lambda a, d=desired: a.create(d)))
    return tasks, outcome


def _list_existing(kube: Cluster, state: DesiredState) -> list[dict[str, Any]]:
    if state.scope is None:
        return kube.list_imv_metadata()
    return [item for namespace in state.scope for item in kube.list_imv_metadata(namespace=namespace)]


def lease_name(settings: Settings, shard: tuple[int, int] | None) -> str:
    """The Lease of the run, or of its shard: the shards of one run own disjoint objects and apply
    at once, each against the same shard of another run."""
    return settings.lease_name if shard is None else f"{settings.lease_name}-shard-{shard[0]}-of-{shard[1]}"


def apply(state: DesiredState, kube: Cluster, settings: Settings, log: RunLog) -> ApplyOutcome:
    """Live apply, guarded by a Lease (not needed for --check, which writes nothing)."""
    if settings.check:
        return _apply(state, kube, settings, log)
    with kube.lease(namespace=settings.lease_namespace or kube.own_namespace, name=lease_name(settings, state.shard),
                    wait=settings.lease_wait):
        return _apply(state, kube, settings, log)


def _apply(state: DesiredState, kube: Cluster, settings: Settings, log: RunLog) -> ApplyOutcome:
    existing = _list_existing(kube, state)
    tasks, outcome = plan(state, existing, adopt=settings.adopt)
    outcome.dry_run = settings.check
    applier = _Applier(state, kube, settings, outcome)
    log.info(f"{len(existing)} ImageManifestVulns exist, {len(state.objects)} desired, "
             f"{len(outcome.unchanged)} already up to date, {len(tasks)} to write"
             + (" (dry run)" if settings.check else ""))

    def run(task: tuple[str, Callable[[_Applier], str]]) -> tuple[str, str, str]:
        key, action = task
        try:
            return key, action(applier), ""
        except Invalid as exc:
            return key, "failed", f"rejected by the API server: {exc}"
        except NotFound as exc:
            return key, "failed", f"gone while being written: {exc}"
        except KubeError as exc:
            return key, "failed", str(exc)

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, settings.write_concurrency)) as pool:
        for key, bucket, message in pool.map(run, tasks):
            done += 1
            log.progress("objects applied", done, len(tasks))
            if bucket == "failed":
                outcome.failed.append(Problem(key, message))
            else:
                getattr(outcome, bucket).append(key)
    for name in ("created", "updated", "deleted", "unchanged", "kept", "unmanaged"):
        getattr(outcome, name).sort()
    outcome.left_out = left_out_by_object(state)
    return outcome


def left_out_by_object(state: DesiredState) -> dict[str, dict[str, int]]:
    """Pure: the entries each shrunk object had to leave out, by severity."""
    out = {}
    for key, obj in state.objects.items():
        if SHRUNK_ANNOTATION in obj.annotations:
            counts = left_out_counts(obj.annotations[SHRUNK_ANNOTATION].split(","))
            if counts:
                out[key] = counts
    return out


# --- offline --------------------------------------------------------------------------------


def write_offline(state: DesiredState, path: Path) -> ApplyOutcome:
    """The desired objects as one multi-document YAML that `kubectl apply -f` accepts."""
    import yaml

    from job.codec import atomic_open

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with atomic_open(path, "w") as fh:  # a unique temporary name, never a link planted there
        for key in sorted(state.objects):
            fh.write("---\n")
            yaml.dump(state.objects[key].manifest(state.last_update), fh, Dumper=dumper, sort_keys=False,
                      allow_unicode=True, width=1 << 16)
    return ApplyOutcome(created=sorted(state.objects), target=str(path), left_out=left_out_by_object(state))
