"""What fixes a package: its fixed-by versions, and the one target version that fixes them all.

Pure; the version ordering is job.versions'.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from job import versions
from job.model import SEVERITY_RANK, Feature, Vulnerability


@dataclass(frozen=True, slots=True)
class Fix:
    """Updating one installed package to a fixed-by version fixes these vulnerabilities."""

    package: str
    installed: str
    fixed_by: tuple[str, ...]  # lowest first (versions.ordered): one order in every view
    severity: str  # the highest of the vulnerabilities it fixes
    vulnerabilities: int
    scheme: str = ""  # the package's version scheme (job.versions), '' when unknown
    #: The one version that fixes them all (the highest fixed-by); '' when it cannot be told.
    target: str = ""

    @property
    def to(self) -> str:
        """What to update to, in words: the target, else every fixed-by version."""
        return self.target or ", ".join(self.fixed_by)


def fixes_of(entries: Iterable[tuple[Feature, Vulnerability]]) -> tuple[Fix, ...]:
    """Per installed package, what fixes its entries that have a fixed-by version; most severe first."""
    by_package: dict[tuple[str, str], list[Vulnerability]] = defaultdict(list)
    schemes: dict[tuple[str, str], str] = {}
    for f, v in entries:
        if v.fixed_by:
            by_package[(f.name, f.version)].append(v)
            if (f.name, f.version) not in schemes:
                schemes[(f.name, f.version)] = versions.scheme(f.version_format, f.namespace_name)
    fixes = []
    for (package, installed), vulns in by_package.items():
        scheme = schemes[(package, installed)]
        fixed_by = versions.ordered(scheme, tuple(v.fixed_by for v in vulns))
        top = max(vulns, key=lambda v: SEVERITY_RANK.get(v.severity, 0)).severity
        fixes.append(Fix(package, installed, fixed_by, top, len(vulns), scheme,
                         versions.target(scheme, fixed_by)))
    fixes.sort(key=lambda x: (-SEVERITY_RANK.get(x.severity, 0), -x.vulnerabilities, x.package))
    return tuple(fixes)


def merge_fixes(lists: Iterable[tuple[Fix, ...]]) -> tuple[Fix, ...]:
    """The fixes of several images of one workload: one per installed package."""
    merged: dict[tuple[str, str], Fix] = {}
    for fixes in lists:
        for fix in fixes:
            key = (fix.package, fix.installed)
            seen = merged.get(key)
            if seen is None:
                merged[key] = fix
            else:
                top = max(seen.severity, fix.severity, key=lambda s: SEVERITY_RANK.get(s, 0))
                fixed_by = versions.ordered(fix.scheme, seen.fixed_by + fix.fixed_by)
                merged[key] = Fix(fix.package, fix.installed, fixed_by, top,
                                  max(seen.vulnerabilities, fix.vulnerabilities), fix.scheme,
                                  versions.target(fix.scheme, fixed_by))
    return tuple(sorted(merged.values(),
                        key=lambda x: (-SEVERITY_RANK.get(x.severity, 0), -x.vulnerabilities, x.package)))
