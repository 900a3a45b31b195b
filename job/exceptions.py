"""Accepted risk: exception entries and what they match. Pure: no I/O, no clock (the day is given).

An entry (from the exceptions file, a namespace annotation or an OpenVEX statement, see job.vex)
is scoped by globs over namespace, workload (Kind/name), image repository, package and
vulnerability id, and holds until a date, until a fix exists, or (VEX) for good. Accepting changes
what the reports say and rank, never what an ImageManifestVuln says.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Iterable

#: `until` values: a date ordinal, or one of these.
FIXABLE = -1  # until a fixed-by version exists
NO_END = 0  # a VEX statement: until a newer statement says otherwise
SCOPE_KEYS = ("namespace", "workload", "image", "package", "vulnerability")
KEYS = frozenset(SCOPE_KEYS + ("reason", "by", "until", "ticket"))
MAX_ENTRIES = 5000
_MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EntryError(ValueError):
    """An entry that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One exception entry or VEX statement, as matched against findings."""

    namespace: str = ""  # globs; '' matches anything
    workload: str = ""  # "Kind/name" glob, or a name glob for any kind
    image: str = ""  # repository glob: "quay.io/shop/*"
    package: str = ""  # a package name (glob)
    vulnerability: str = ""  # CVE or advisory id (glob), matched on the entry's name and CVEs
    reason: str = ""
    by: str = ""
    until: int = NO_END
    ticket: str = ""
    source: str = ""  # "exceptions file F, entry 3", "namespace shop (annotation K)", "VEX F, statement 2"
    origin: str = "file"  # "file", "annotation", "vex"
    # VEX only: its status, the digests it names, the package version, and its time (to pick the latest).
    status: str = ""
    digests: tuple[str, ...] = ()
    version: str = ""
    timestamp: str = ""

    @property
    def accepts(self) -> bool:
        """False for a VEX statement saying affected or under investigation: it accepts nothing."""
        return self.status in ("", "not_affected", "fixed")

    @property
    def until_text(self) -> str:
        if self.until == FIXABLE:
            return "a fix exists"
        return dt.date.fromordinal(self.until).isoformat() if self.until > 0 else "no end date"


# --- what an entry matches ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One vulnerability entry of one image in one workload: what an entry is matched against."""

    namespace: str
    kind: str
    name: str
    repository: str  # host/repository
    digest: str
    package: str
    version: str
    vulnerability: str
    cves: tuple[str, ...]
    fixable: bool


def matches(rule: Rule, o: Occurrence) -> bool:
    if rule.namespace and not _glob(rule.namespace, o.namespace):
        return False
    if rule.workload:
        kind, sep, name = rule.workload.rpartition("/")
        if not _glob(name, o.name) or (sep and not _glob(kind, o.kind, fold=True)):
            return False
    if rule.digests and o.digest not in rule.digests:
        return False
    if rule.image and not _glob(rule.image, o.repository):
        return False
    if rule.package and not _glob(rule.package, o.package):
        return False
    if rule.version and rule.version != o.version:
        return False
    if rule.vulnerability:
        ids = (o.vulnerability, *o.cves)
        if not any(_glob(rule.vulnerability, i, fold=True) for i in ids):
            return False
    return True


def _glob(pattern: str, value: str, *, fold: bool = False) -> bool:
    if fold:
        pattern, value = pattern.upper(), value.upper()
    return fnmatch.fnmatchcase(value, pattern)


def state(rule: Rule, *, today: int, fixable: bool, soon_days: int) -> str:
    """'active', 'expiring' (within soon_days of its date), or 'expired' (on its date, or a fix exists)."""
    if rule.until == FIXABLE:
        return "expired" if fixable else "active"
    if rule.until == NO_END:
        return "active"
    if today >= rule.until:
        return "expired"
    return "expiring" if rule.until - today <= soon_days else "active"


class RuleIndex:
    """Rules grouped by their exact vulnerability id, so that a cluster's million image entries are
    each matched against the few rules naming them, not against every rule."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.by_id: dict[str, list[Rule]] = {}
        self.other: list[Rule] = []
        for r in rules:
            if r.vulnerability and not any(c in r.vulnerability for c in "*?["):
                self.by_id.setdefault(r.vulnerability.upper(), []).append(r)
            else:
                self.other.append(r)

    def candidates(self, o: Occurrence) -> list[Rule]:
        ids = dict.fromkeys(i.upper() for i in (o.vulnerability, *o.cves))
        return [r for i in ids for r in self.by_id.get(i, ())] + self.other


def decide(rules: Iterable[Rule] | RuleIndex, o: Occurrence) -> list[Rule]:
    """The entries that speak about this occurrence: every exception entry that matches, and of the
    VEX statements only the latest (a newer `affected` undoes an older `not_affected`)."""
    found: list[Rule] = []
    vex: Rule | None = None
    for r in (rules.candidates(o) if isinstance(rules, RuleIndex) else rules):
        if not matches(r, o):
            continue
        if r.origin == "vex":
            if vex is None or r.timestamp >= vex.timestamp:
                vex = r
        else:
            found.append(r)
    if vex is not None:
        found.append(vex)
    return found


# --- reading entries (validated) ------------------------------------------------------------------


def parse_entries(data: Any, *, source: str, origin: str = "file", namespace: str = "") -> list[Rule]:
    """Entries of an exceptions file (`exceptions: [...]`) or of an annotation (a bare list). Raises
    EntryError naming the entry on anything unknown, missing or malformed: never a skipped line.
    An annotation's entries are held to its namespace."""
    if isinstance(data, dict) and origin == "file":
        unknown = sorted(str(k) for k in data if k != "exceptions")
        if unknown:
            raise EntryError(f"{source}: unknown key {unknown[0]!r} (the file holds `exceptions:`, a list)")
        data = data.get("exceptions") or []
    if not isinstance(data, list):
        raise EntryError(f"{source}: expected a list of exception entries")
    if len(data) > MAX_ENTRIES:
        raise EntryError(f"{source}: more than {MAX_ENTRIES} entries")
    return [_entry(item, where=f"{source}, entry {i}", origin=origin, namespace=namespace)
            for i, item in enumerate(data, 1)]


def _entry(item: Any, *, where: str, origin: str, namespace: str) -> Rule:
    if not isinstance(item, dict):
        raise EntryError(f"{where}: not a mapping of keys (namespace, workload, image, package, vulnerability, "
                         f"reason, by, until, ticket)")
    label = _label(item)
    where = f"{where}{label}"
    unknown = sorted(str(k) for k in item if k not in KEYS)
    if unknown:
        raise EntryError(f"{where}: unknown key {unknown[0]!r}")
    fields: dict[str, Any] = {}
    for key in SCOPE_KEYS:
        value = item.get(key)
        if value is None:
            continue
        fields[key] = _pattern(value, where=where, key=key)
    if not any(fields.values()):
        raise EntryError(f"{where}: no scope (give at least one of {', '.join(SCOPE_KEYS)})")
    if origin == "annotation":
        if fields.get("namespace") and not _glob(fields["namespace"], namespace):
            raise EntryError(f"{where}: an annotation of namespace {namespace} may not name another namespace")
        fields["namespace"] = namespace
    for key in ("reason", "by"):
        fields[key] = _text(item.get(key), where=where, key=key)
    fields["until"] = parse_until(item.get("until"), where=where)
    ticket = item.get("ticket")
    if ticket is not None:
        ticket = _text(ticket, where=where, key="ticket")
        if not re.fullmatch(r"https?://[^\s<>\"']+", ticket):
            raise EntryError(f"{where}: ticket must be an http(s) link")
        fields["ticket"] = ticket
    return Rule(**fields, source=where, origin=origin)


def _label(item: dict) -> str:
    """' (CVE-1 in shop)': how an entry is named in errors, from its own scope."""
    parts = [str(item[k])[:80] for k in ("vulnerability", "package", "image", "workload", "namespace")
             if isinstance(item.get(k), (str, int))]
    return f" ({' in '.join(parts[:2])})" if parts else ""


def _text(value: Any, *, where: str, key: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EntryError(f"{where}: {key} is required")
    if not isinstance(value, str):
        raise EntryError(f"{where}: {key} must be text")
    if len(value) > _MAX_TEXT or _CONTROL.search(value.strip()):
        raise EntryError(f"{where}: {key} must be one line of at most {_MAX_TEXT} characters")
    return value.strip()


def _pattern(value: Any, *, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EntryError(f"{where}: {key} must be a non-empty text or glob")
    value = value.strip()
    if len(value) > 300 or _CONTROL.search(value) or " " in value:
        raise EntryError(f"{where}: {key} {value[:80]!r} is not a valid glob")
    if value.count("[") != value.count("]") or re.search(r"\[[^\]]*\[", value) or "[]" in value:
        raise EntryError(f"{where}: {key} {value[:80]!r} is not a valid glob (unbalanced [ ])")
    if key == "workload" and value.count("/") > 1:
        raise EntryError(f"{where}: workload {value[:80]!r} must be Kind/name or a name")
    return value


def parse_until(value: Any, *, where: str) -> int:
    """A date (YAML date or 'YYYY-MM-DD') as an ordinal, or FIXABLE for `fixable`."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.toordinal()
    if value is None:
        raise EntryError(f"{where}: until is required (a date YYYY-MM-DD, or `fixable`)")
    if isinstance(value, str) and value.strip().lower() == "fixable":
        return FIXABLE
    try:
        return dt.date.fromisoformat(str(value).strip()).toordinal()
    except ValueError:
        raise EntryError(f"{where}: until {str(value)[:40]!r} is not a date (YYYY-MM-DD) or `fixable`") from None
