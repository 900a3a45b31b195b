"""Pure: the page's vulnerability table, each vulnerability of each package across the images that have it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from job import versions
from job.model import SEVERITIES, SEVERITY_RANK
from job.report.view import FindingKey, ImageItem, image_order
from job.report.vulns import PackageVuln


@dataclass(frozen=True, slots=True)
class VulnGroup(PackageVuln):
    """One vulnerability in one package, across every image that has it."""

    installed: tuple[str, ...]
    fixed_by: tuple[str, ...]
    link: str
    cvss: float | None
    images: tuple[ImageItem, ...]
    namespaces: tuple[str, ...]
    workloads: int


def vulnerability_groups(images: Iterable[ImageItem], limit: int | None) -> tuple[list[VulnGroup], int]:
    """Pure: the vulnerabilities of these images grouped by (name, package), most urgent first (the
    first `limit` groups when given); and how many groups there are in all."""
    if limit == 0:  # how many only (the index of a large cluster names none)
        return [], len({(v.name, f.name) for image in images for f, v in image.entries})
    groups: dict[FindingKey, list[Any]] = {}
    for image in images:
        for f, v in image.entries:
            key = (v.name, f.name)
            g = groups.get(key)
            if g is None:
                groups[key] = [SEVERITY_RANK.get(v.severity, 0), {id(image): image}, [f, v]]
            else:
                g[0] = max(g[0], SEVERITY_RANK.get(v.severity, 0))
                g[1][id(image)] = image
                g[2].extend((f, v))
    order = sorted(groups.items(), key=lambda kv: (-kv[1][0], -len(kv[1][1]), kv[0]))
    if limit is not None:
        order = order[:limit]
    out = []
    for (name, package), (rank, images_by_id, pairs) in order:
        if len(pairs) == 2:  # one entry of one image: most groups of an owner's page
            f, v = pairs
            (image,) = images_by_id.values()
            out.append(VulnGroup(name, package, SEVERITIES[rank], (f.version,) if f.version.strip() else (),
                                 (v.fixed_by,) if v.fixed_by.strip() else (), v.link, v.cvss_score, (image,),
                                 image.namespaces, len(image.workloads)))
            continue
        feats, vulns = pairs[0::2], pairs[1::2]
        if len(images_by_id) == 1:  # one image, several versions of the package
            group_images = tuple(images_by_id.values())
            namespaces, workloads = group_images[0].namespaces, len(group_images[0].workloads)
        else:
            group_images = tuple(sorted(images_by_id.values(), key=image_order))
            namespaces = tuple(sorted({ns for i in group_images for ns in i.namespaces}))
            workloads = len({(ns, wl) for i in group_images for ns, wl in i.workloads})
        link = next((v.link for v in vulns if v.link), "")
        scores = [v.cvss_score for v in vulns if v.cvss_score is not None]
        scheme = versions.scheme(feats[0].version_format, feats[0].namespace_name)
        installed = versions.ordered(scheme, tuple(f.version for f in feats))
        fixed_by = versions.ordered(scheme, tuple(v.fixed_by for v in vulns if v.fixed_by))
        out.append(VulnGroup(
            vulnerability=name, package=package, severity=SEVERITIES[rank], installed=installed, fixed_by=fixed_by,
            link=link, cvss=max(scores) if scores else None, images=group_images,
            namespaces=namespaces, workloads=workloads))
    return out, len(groups)
