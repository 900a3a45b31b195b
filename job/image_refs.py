"""Image references (pure): which manifest a container runs, from its status's imageID or its
image reference pinned by digest, with Docker Hub's names made canonical as the ImageManifestVuln
writes them.
"""
from __future__ import annotations

import re

from job.model import ImageRef

_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_BARE_HEX = re.compile(r"^[0-9a-f]{64}$")
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                   r"(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")
_RUNTIME_PREFIXES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")
#: Docker Hub has several names; the ImageManifestVuln uses the canonical one.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


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
