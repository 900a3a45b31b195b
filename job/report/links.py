"""The image's own vulnerability page on its registry, built wherever its address is known.

Pure. A backend that gave a page (Quay online knows its scheme) is taken at its word, if http(s);
otherwise the page follows from the manifest and who answered: Quay's console page (also for
saved Quay answers, offline), Harbor's artifact page, Docker Hub's tag page. Clair and unknown
registries have no page: ''.
"""
from __future__ import annotations

from typing import Iterable
from urllib.parse import quote

from job.model import ImageRef
from job.registries.refs import DOCKER_HUB_NAMES
from job.report.text import safe_link


def registry_page(ref: ImageRef, *, backend: str, given: str = "", written: Iterable[str] = ()) -> str:
    """written: the image as pod specs wrote it ('nginx:1.27'), for Docker Hub's tag."""
    if safe_link(given):
        return safe_link(given)
    host = ref.host.lower()
    if host in DOCKER_HUB_NAMES:
        return safe_link(docker_hub_page(ref, _tag(written)))
    if backend == "harbor":
        return safe_link(harbor_page(ref))
    if backend in ("quay", "offline"):  # offline answers are Quay's security API documents
        return safe_link(quay_page(ref))
    return ""


def quay_page(ref: ImageRef) -> str:
    return (f"https://{ref.host}/repository/{quote(ref.repository, safe='/')}/manifest/"
            f"{quote(ref.digest, safe=':')}?tab=vulnerabilities")


def harbor_page(ref: ImageRef) -> str:
    """The artifact's page in Harbor's portal; a repository name with slashes is encoded twice, as there."""
    project, _, name = ref.repository.partition("/")
    if not name:
        return ""
    return (f"https://{ref.host}/harbor/projects/{quote(project, safe='')}/repositories/"
            f"{quote(quote(name, safe=''), safe='')}/artifacts-tab/artifacts/{quote(ref.digest, safe=':')}")


def docker_hub_page(ref: ImageRef, tag: str) -> str:
    """The tag's page for this digest; without a tag, the repository's tags."""
    namespace, _, name = ref.repository.partition("/")
    if not name:
        namespace, name = "library", namespace
    repo = f"_/{quote(name, safe='')}" if namespace == "library" else f"r/{quote(namespace, safe='')}/{quote(name, safe='')}"
    if not tag:
        return f"https://hub.docker.com/{repo}/tags"
    return (f"https://hub.docker.com/layers/{quote(namespace, safe='')}/{quote(name, safe='')}/{quote(tag, safe='')}"
            f"/images/{quote(ref.digest.replace(':', '-', 1), safe='')}")


def _tag(written: Iterable[str]) -> str:
    """The first tag among images as written: 'docker.io/library/nginx:1.27@sha256:…' → '1.27'."""
    for text in written:
        name = text.split("@", 1)[0]
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            return last.split(":", 1)[1]
    return ""
