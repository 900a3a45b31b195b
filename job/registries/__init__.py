"""Registries: each distinct manifest's vulnerability report, from the registry it came from.

`scan_manifests` is the one entry point. Offline (--secscan-dir) it reads Quay security
responses from files; otherwise it asks Quay (discovered), Clair v4 or Harbor (configured per
host) over one pooled, bounded, retrying HTTP client; each of those three is a `Backend`
(backend.py: one scan call, one result type, one UnexpectedShape error for its parser). Every
request gets exactly one ScanResult; no per-manifest problem raises. Configuration problems
raise ConfigError before any request is sent.
"""
from __future__ import annotations

from typing import Sequence

from job.log import RunLog
from job.model import ImageRef, ScanRequest, ScanResult
from job.registries.credentials import SecretSource
from job.settings import Settings

__all__ = ["SecretSource", "scan_manifests"]


def scan_manifests(requests: Sequence[ScanRequest], settings: Settings, *, secrets: SecretSource | None,
                   log: RunLog, vulnerable_only: bool = False) -> dict[ImageRef, ScanResult]:
    """{ref: result} for every request; `secrets` reads pull secrets (None: no cluster).

    With `vulnerable_only`, reports hold only the packages that have vulnerabilities (what the
    stages after the scan read), which keeps thousands of reports small in memory."""
    if settings.secscan_dir:
        from job.registries.offline import scan_directory

        return scan_directory(requests, settings.secscan_dir, log=log, vulnerable_only=vulnerable_only,
                              max_response_mb=settings.max_response_mb)
    from job.registries.online import scan_online

    return scan_online(requests, settings, secrets=secrets, log=log, vulnerable_only=vulnerable_only)
