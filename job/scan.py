"""Scan: one report request per distinct manifest, whatever number of pods run it.

This stage decides what to ask (the distinct manifests of this run's shard, each with the pull
secrets of the pods that run it) and what the scan cache (job.scan_cache) already answers;
job.registries does the asking.
"""
from __future__ import annotations

import contextlib
import os
import time

from job import registries, scan_cache
from job.cluster import Cluster
from job.desired import shard_index
from job.errors import KubeError
from job.log import RunLog
from job.model import ImageRef, Problem, ScanRequest, ScanResult, Snapshot
from job.settings import Settings, shard_of


def scan_requests(snap: Snapshot, *, sa_pull_secrets: dict[tuple[str, str], tuple[str, ...]],
                  shard: tuple[int, int] | None) -> list[ScanRequest]:
    """Pure: one request per distinct manifest, with the pull secrets that may open its registry,
    pods' own first, then their ServiceAccounts' (the order a kubelet tries them)."""
    secrets: dict[ImageRef, dict[tuple[str, str], None]] = {}
    for pod in snap.pods:
        pod_secrets = [(pod.namespace, s) for s in pod.pull_secrets]
        pod_secrets += [(pod.namespace, s) for s in sa_pull_secrets.get((pod.namespace, pod.service_account), ())]
        for container in pod.containers:
            ref = container.ref
            if ref is None or (shard is not None and shard_index(ref.digest, shard[1]) != shard[0]):
                continue
            bucket = secrets.setdefault(ref, {})
            for item in pod_secrets:
                bucket.setdefault(item, None)
    return [ScanRequest(ref, tuple(secrets[ref])) for ref in sorted(secrets)]


def _service_account_secrets(client: Cluster, snap: Snapshot) -> dict[tuple[str, str], tuple[str, ...]]:
    """imagePullSecrets of the ServiceAccounts the pods run as, from one LIST (never a GET per pod)."""
    wanted = {(p.namespace, p.service_account) for p in snap.pods}
    namespaces = tuple(sorted({ns for ns, _ in wanted})) if snap.scope is not None else ()
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for account in client.list_service_accounts(namespaces=namespaces):
        meta = account.get("metadata") if isinstance(account, dict) else None
        key = (meta.get("namespace"), meta.get("name")) if isinstance(meta, dict) else None
        if key is not None and all(isinstance(k, str) for k in key) and key in wanted:
            secrets = account.get("imagePullSecrets")
            out[key] = tuple(s["name"] for s in secrets if isinstance(s, dict) and isinstance(s.get("name"), str)
                             and s["name"]) if isinstance(secrets, list) else ()
    return out


def scan(snap: Snapshot, settings: Settings, log: RunLog, *, client: Cluster | None = None) -> dict[ImageRef, ScanResult]:
    shard = shard_of(settings)
    # Which manifests to ask about is known before the pull secrets are: they are read only when
    # some manifest is not answered from the scan cache.
    wanted = scan_requests(snap, sa_pull_secrets={}, shard=shard)
    online = not settings.secscan_dir  # saved answers (--secscan-dir) need no cache
    cache = _Cache(settings, snap, shard, log) if online else None
    ask, reused = cache.plan(wanted) if cache is not None else (wanted, {})
    if ask and client is not None and online:
        try:
            sa_secrets = _service_account_secrets(client, snap)
        except KubeError as exc:
            snap.problems.append(Problem("service accounts", f"cannot read their pull secrets: {exc}"))
        else:
            asked = {r.ref for r in ask}
            ask = [r for r in scan_requests(snap, sa_pull_secrets=sa_secrets, shard=shard) if r.ref in asked]
    log.info(f"{len(wanted)} distinct manifests"
             + (f" (shard {settings.shard or os.environ.get('JOB_COMPLETION_INDEX')})" if shard else "")
             + f": {len(ask)} to ask about" + (f", {len(reused)} answered from the scan cache" if cache else ""))
    # Only vulnerable packages are read after the scan: the others are not kept.
    answered = registries.scan_manifests(ask, settings, secrets=client, log=log, vulnerable_only=True) \
        if ask or not online else {}
    if cache is not None:
        cache.save(reused, answered)
    return dict(sorted({**{ref: e.result for ref, e in reused.items()}, **answered}.items()))


class _Cache:
    """The scan cache of this run (job.scan_cache), read before the scan and written after it."""

    def __init__(self, settings: Settings, snap: Snapshot, shard: tuple[int, int] | None, log: RunLog) -> None:
        self.path, self.shard = scan_cache.path_for(settings.output_dir, shard), shard
        self.key = scan_cache.fingerprint(settings, cluster=snap.cluster)
        self.rescan_after = settings.rescan_after * 3600
        self.now = time.time()  # before asking: an answer is never younger than the cache says
        self.log = log

    def plan(self, wanted: list[ScanRequest]) -> tuple[list[ScanRequest], dict[ImageRef, scan_cache.Entry]]:
        if self.rescan_after <= 0:
            return wanted, {}
        cached, why = scan_cache.load(self.path, key=self.key, wanted=(r.ref for r in wanted))
        if why:
            self.log.warn(f"scan cache {self.path} ignored: {why}; every manifest is asked about")
        chosen = scan_cache.plan(wanted, cached, now=self.now, rescan_after=self.rescan_after)
        return chosen.ask, chosen.reused

    def save(self, reused: dict[ImageRef, scan_cache.Entry], answered: dict[ImageRef, ScanResult]) -> None:
        entries = scan_cache.next_entries(reused, answered, fetched_at=self.now)
        scan_cache.forget_other_layouts(self.path.parent, self.shard)
        try:
            scan_cache.save(self.path, entries, key=self.key)
        except OSError as exc:
            # An old file left in place could answer for manifests gone since: it goes too.
            self.log.warn(f"cannot write the scan cache {self.path} ({exc.strerror or exc}): "
                          "the next run asks about every manifest")
            with contextlib.suppress(OSError):
                self.path.unlink()
