"""Image references as URLs: validation before anything goes into a path, and Docker Hub's names.

Hosts, repositories and digests come from pod statuses, which anyone who can run a pod
controls; they are checked against the distribution spec's grammar before use in a URL.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Iterable

from job.model import ImageRef

_HOST = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}"
                   r"[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$|^\[[0-9a-fA-F:.]+\](?::[0-9]{1,5})?$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

#: Docker Hub answers the Registry API under this name, whatever name the image used.
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})


def ref_problem(ref: ImageRef) -> str:
    """Why this reference cannot be put into a URL, or '' when it can."""
    if not _HOST.match(ref.host or ""):
        return f"invalid registry host {ref.host!r}"
    if len(ref.repository) > 255 or not _REPOSITORY.match(ref.repository or ""):
        return f"invalid repository name {ref.repository[:80]!r}"
    if not _DIGEST.match(ref.digest or ""):
        return f"invalid or unsupported digest {ref.digest[:80]!r} (expected sha256:<64 hex>)"
    return ""


def api_host(host: str) -> str:
    """The host that serves the registry's HTTP APIs for images named with `host`."""
    return DOCKER_HUB_API if host.lower() in DOCKER_HUB_NAMES else host.lower()


def split_repository(repository: str) -> tuple[str, str]:
    """('namespace', 'rest/of/name'): Quay's organisation and Harbor's project come first."""
    namespace, _, rest = repository.partition("/")
    return namespace, rest


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` (with its port, if any) matches one of the glob patterns, ignoring case."""
    host = host.lower()
    return any(fnmatch.fnmatchcase(host, p.strip().lower()) for p in patterns if p.strip())
