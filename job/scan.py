"""Scan: one report request per distinct manifest, whatever number of pods run it.

This stage decides what to ask (the distinct manifests of this run's shard, each with the pull
secrets of the pods that run it); job.registries does the asking.
"""
from __future__ import annotations

import os
from job import registries
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
    sa_secrets: dict[tuple[str, str], tuple[str, ...]] = {}
    if client is not None and not settings.secscan_dir:
        try:
            sa_secrets = _service_account_secrets(client, snap)
        except KubeError as exc:
            snap.problems.append(Problem("service accounts", f"cannot read their pull secrets: {exc}"))
    requests = scan_requests(snap, sa_pull_secrets=sa_secrets, shard=shard_of(settings))
    log.info(f"{len(requests)} distinct manifests to ask about"
             + (f" (shard {settings.shard or os.environ.get('JOB_COMPLETION_INDEX')})" if shard_of(settings) else ""))
    # Only vulnerable packages are read after the scan: the others are not kept.
    return registries.scan_manifests(requests, settings, secrets=client, log=log, vulnerable_only=True)
