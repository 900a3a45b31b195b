"""Triage rules: what to fix first, by when. Pure: no I/O, no clock (the day is the snapshot's).

A *finding* is a vulnerability in a package in a workload, as in docs/summary-schema.md. Its
signals come from feeds (CISA KEV, FIRST EPSS) matched on CVE ids; its age from the first run
that saw it; its due date from the SLA policy, or the KEV due date when that is sooner.
Triage changes what the reports say and in which order, never what an ImageManifestVuln says.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Mapping

from job.model import SEVERITIES, SEVERITY_RANK, Feature, Vulnerability

_CVE = re.compile(r"CVE-\d{4}-\d{4,9}", re.IGNORECASE)
#: A registry's text can name any number of CVEs; a finding's signals look at the first few.
MAX_CVES = 16
#: `Critical=7d,High=30d`: what --sla takes. Days only, up to ten years.
_SLA_ITEM = re.compile(r"\s*([A-Za-z0-9]+)\s*=\s*(\d{1,4})\s*d?\s*")
DEFAULT_SLA = "Critical=7d,High=30d,Medium=90d"


# --- feeds, as the rules see them (job.feeds reads them) --------------------------------------


@dataclass(frozen=True, slots=True)
class KevEntry:
    """One CVE of the CISA Known Exploited Vulnerabilities catalogue."""

    due: int  # date.toordinal() of dueDate; 0 when the catalogue gives none
    ransomware: bool  # knownRansomwareCampaignUse == "Known"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What the run could make of one feed: shown in every output."""

    name: str  # "KEV", "EPSS"
    source: str  # the path or URL; '' when not configured
    state: str  # "not configured", "ok", "stale", "missing", "malformed"
    detail: str = ""
    date: str = ""  # the feed's own date (KEV dateReleased, EPSS score_date)
    entries: int = 0

    @property
    def usable(self) -> bool:
        return self.state in ("ok", "stale")

    @property
    def problem(self) -> bool:
        return self.state in ("stale", "missing", "malformed")


@dataclass(frozen=True, slots=True)
class Feeds:
    kev: Mapping[str, KevEntry] = field(default_factory=dict)
    epss: Mapping[str, float] = field(default_factory=dict)  # CVE → probability, 0..1
    status: tuple[FeedStatus, ...] = ()


NO_FEEDS = Feeds(status=(FeedStatus("KEV", "", "not configured"), FeedStatus("EPSS", "", "not configured")))


# --- matching ------------------------------------------------------------------------------------


def cve_ids(feature: Feature, vuln: Vulnerability) -> tuple[str, ...]:
    """The CVE ids a vulnerability entry stands for: its name (Quay, Clair, Harbor's id), else the
    aliases in its metadata (a GHSA with a CVE alias), else its links, else the package's CVEIds
    when the package has only this one vulnerability (they cannot be told apart otherwise)."""
    found = _CVE.findall(vuln.name)
    if not found and isinstance(vuln.metadata, dict):
        aliases = vuln.metadata.get("aliases") or vuln.metadata.get("Aliases")
        if isinstance(aliases, (list, tuple)):
            found = [a for a in aliases[:MAX_CVES] if isinstance(a, str) and _CVE.fullmatch(a.strip())]
    if not found and vuln.link:
        found = _CVE.findall(vuln.link[:4096])
    if not found and len(feature.vulnerabilities) == 1:
        found = [c for c in feature.cve_ids[:MAX_CVES] if isinstance(c, str) and _CVE.fullmatch(c)]
    return tuple(dict.fromkeys(c.strip().upper() for c in found[:MAX_CVES]))


def wanted_cves(features) -> set[str]:
    """Every CVE id the given packages' vulnerabilities name: all an EPSS reader needs to keep."""
    return {c for f in features for v in f.vulnerabilities for c in cve_ids(f, v)}


# --- the base image ------------------------------------------------------------------------------

#: Packages only a distribution's base image installs: the layer that added one is the base layer.
BASE_PACKAGES = frozenset({"base-files", "basesystem", "alpine-baselayout", "alpine-baselayout-data", "filesystem",
                           "distroless-base", "libc6", "libc-bin", "glibc", "musl", "busybox", "coreutils"})


def base_layer(features) -> str:
    """The layer (AddedBy, Clair's introduced_in, Harbor's layer digest) that added the distribution's
    own packages; '' when the registry does not say, so no finding is said to be in the base image."""
    for f in features:
        if f.name in BASE_PACKAGES and f.added_by:
            return f.added_by
    return ""


# --- the SLA policy ------------------------------------------------------------------------------


def parse_sla(text: str) -> dict[str, int]:
    """`Critical=7d,High=30d,Medium=90d` → {severity: days}. Raises ValueError on anything else;
    a severity left out has no deadline (only a KEV due date gives it one)."""
    policy: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        m = _SLA_ITEM.fullmatch(item)
        name = next((s for s in SEVERITIES if m and s.lower() == m.group(1).lower()), "")
        if not name:
            raise ValueError(f"{item!r} is not SEVERITY=DAYSd (severities: {', '.join(SEVERITIES)})")
        policy[name] = int(m.group(2))  # type: ignore[union-attr]
    return policy


# --- one finding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    package: str
    vulnerability: str
    severity: str
    fixable: bool
    cves: tuple[str, ...]
    kev_cve: str  # the CVE that is in KEV; '' when none
    kev: KevEntry | None
    epss: float  # the highest EPSS of its CVEs; -1.0 when unknown
    first_seen: int  # date ordinal
    due: int  # date ordinal; 0 when the policy sets no deadline

    def days_open(self, today: int) -> int:
        return max(0, today - self.first_seen)

    def overdue(self, today: int) -> bool:
        return bool(self.due) and today > self.due

    @property
    def flags(self) -> tuple[str, ...]:
        """Short words for what makes it urgent: KEV, ransomware, EPSS."""
        out = []
        if self.kev is not None:
            out.append("KEV")
            if self.kev.ransomware:
                out.append("ransomware")
        if self.epss >= 0.1:
            out.append(f"EPSS {self.epss:.0%}")
        return tuple(out)


def finding(package: str, vulnerability: str, severity: str, *, fixable: bool, cves: tuple[str, ...],
            feeds: Feeds, first_seen: int, sla: Mapping[str, int]) -> Finding:
    kev_cve, kev = "", None
    for cve in cves:
        entry = feeds.kev.get(cve)
        if entry is not None and (kev is None or _kev_key(entry) < _kev_key(kev)):
            kev_cve, kev = cve, entry
    epss = max((feeds.epss.get(c, -1.0) for c in cves), default=-1.0)
    return Finding(package, vulnerability, severity, fixable, cves, kev_cve, kev, epss, first_seen,
                   due_day(first_seen=first_seen, severity=severity, sla=sla, kev=kev))


def _kev_key(e: KevEntry) -> tuple:
    return (not e.ransomware, e.due or 10**7)


def due_day(*, first_seen: int, severity: str, sla: Mapping[str, int], kev: KevEntry | None) -> int:
    """The policy's deadline from the first sighting; the KEV due date when that is sooner."""
    days = sla.get(severity)
    due = first_seen + days if days is not None else 0
    if kev is not None and kev.due and (not due or kev.due < due):
        due = kev.due
    return due


def rank(f: Finding) -> tuple:
    """Sort key, most urgent first: KEV (known ransomware use, then the earlier due date), then
    severity, fixable before not fixable, then the EPSS score; names last, so the order is stable."""
    kev = (0, *_kev_key(f.kev)) if f.kev is not None else (1, True, 10**7)
    return (*kev, -SEVERITY_RANK.get(f.severity, 0), not f.fixable, -f.epss, f.vulnerability, f.package)


# --- dates ---------------------------------------------------------------------------------------


def day_of(rfc3339: str) -> int:
    """The UTC day of an RFC 3339 time as a date ordinal; 0 when it is not one."""
    try:
        return dt.date.fromisoformat(rfc3339[:10]).toordinal()
    except (ValueError, TypeError):
        return 0


def iso_day(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).isoformat() if ordinal > 0 else ""
