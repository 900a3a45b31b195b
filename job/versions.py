"""One target version per package: the lowest version that fixes every listed vulnerability.

Pure. Each fixed-by version is a version at which one vulnerability is fixed, so the lowest
version fixing them all is the highest of them, in the ordering of the package's format (dpkg,
rpm, apk, semver ...). `univers` does the ordering: measured against python-debian (dpkg only)
and rpm-vercmp (rpm only), it orders all of them alike on the cases tried (epochs, tildes,
`-r` revisions, `el8_10` suffixes) at about 30 µs a comparison. A format it does not know, or
a version it cannot read, gives no target: the reports then list every fixed-by version.
"""
from __future__ import annotations

import functools
import re
from typing import Iterable

#: Quay's VersionFormat, and the distributions whose packages use each scheme.
_FORMATS = {"dpkg": "deb", "deb": "deb", "debian": "deb", "rpm": "rpm", "apk": "apk", "semver": "semver",
            "npm": "semver", "go": "golang", "golang": "golang", "pypi": "pypi", "pep440": "pypi",
            "python": "pypi", "maven": "maven", "gem": "gem", "rubygems": "gem"}
_DISTROS = {"debian": "deb", "ubuntu": "deb", "alpine": "apk", "rhel": "rpm", "centos": "rpm", "fedora": "rpm",
            "ol": "rpm", "oracle": "rpm", "amzn": "rpm", "rocky": "rpm", "almalinux": "rpm", "suse": "rpm",
            "opensuse": "rpm", "sles": "rpm", "photon": "rpm"}
_MAX_VERSION = 128  # a registry's text; a version longer than this is not one


def scheme(version_format: str, namespace_name: str = "") -> str:
    """The version scheme of a package: its format, else its distribution's ('' when unknown)."""
    known = _FORMATS.get(version_format.strip().lower())
    if known:
        return known
    distro = namespace_name.split(":", 1)[0].strip().lower()
    return _DISTROS.get(distro, "")


def _class(name: str):
    from univers import versions as v

    return {"deb": v.DebianVersion, "rpm": v.RpmVersion, "apk": v.AlpineLinuxVersion, "semver": v.SemverVersion,
            "golang": v.GolangVersion, "pypi": v.PypiVersion, "maven": v.MavenVersion,
            "gem": v.RubygemsVersion}[name]


@functools.lru_cache(maxsize=16384)
def target(scheme_name: str, fixed_by: tuple[str, ...]) -> str:
    """The highest of the fixed-by versions in the scheme; '' when it cannot be told."""
    versions = [f.strip() for f in fixed_by if f.strip()]
    if not versions or not scheme_name:
        return ""
    if len(set(versions)) == 1:
        return versions[0]
    try:
        cls = _class(scheme_name)
        parsed = [(cls(text), text) for text in versions if len(text) <= _MAX_VERSION]
        if len(parsed) != len(versions):
            return ""
        return max(parsed, key=lambda pair: pair[0])[1]
    except Exception:  # noqa: BLE001 - univers raises many kinds for text it cannot read: no target
        return ""


def target_of(fixed_by: Iterable[str], *, version_format: str, namespace_name: str) -> str:
    return target(scheme(version_format, namespace_name), tuple(fixed_by))


@functools.lru_cache(maxsize=16384)
def ordered(scheme_name: str, versions: tuple[str, ...]) -> tuple[str, ...]:
    """The distinct versions, lowest first in the scheme, else in natural order ("1.9" before "1.12").

    One order whatever order the registry listed them in, so the page, workbook and mail agree.
    """
    distinct = sorted({v for v in versions if v.strip()}, key=_natural)
    if len(distinct) < 2 or not scheme_name:
        return tuple(distinct)
    try:
        cls = _class(scheme_name)
        if all(len(text) <= _MAX_VERSION for text in distinct):
            return tuple(sorted(distinct, key=cls))
    except Exception:  # noqa: BLE001 - as in target(): a version univers cannot read keeps the natural order
        pass
    return tuple(distinct)


def _natural(text: str) -> tuple:
    """'3.0.2-0ubuntu1.9' < '3.0.2-0ubuntu1.12': digit runs compare as numbers, the rest as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)), text
