"""The previous run, read back from its summary.json: what the next report compares with.

Pure: the file is read by job.report.load_previous; summary.json is written by job.report.summary.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import msgspec

from job.model import SEVERITIES
from job.triage import day_of

#: summary.json's schema version (docs/summary-schema.md): a run compares only with one of the same.
SCHEMA_VERSION = 1
#: Runs kept in "history" for the trend chart, the current one included.
HISTORY_LENGTH = 12
_SEVERITY_NAMES = {s: s for s in SEVERITIES}  # one string object per severity, however many findings


@dataclass(frozen=True, slots=True)
class Previous:
    """The previous run, compactly: a table of (package, vulnerability) keys, and per workload the
    positions of its keys in that table (a large cluster has close to a million of them)."""

    taken_at: str
    keys: list[tuple[str, str]]
    severities: list[str]  # of each key
    index: dict[tuple[str, str], int]  # key → position
    findings: dict[tuple[str, str, str], array]  # (namespace, kind, name) → positions
    history: tuple[tuple[str, tuple[int, ...]], ...]
    images: tuple[tuple[frozenset[str], tuple[int, ...]], ...]  # (namespaces, counts) per image
    #: Per workload, {key position: day first seen} of findings older than that run; the others
    #: were first seen on `day`, that run's day.
    first_seen: dict[tuple[str, str, str], dict[int, int]] = field(default_factory=dict)
    day: int = 0
    #: Why the first-seen days could not be read ('' when they could): they start afresh.
    first_seen_problem: str = ""

    def totals_for(self, namespaces: frozenset[str]) -> tuple[int, ...]:
        """The previous run's totals over the images that ran in any of these namespaces."""
        sev = [0] * len(SEVERITIES)
        for ns, counts in self.images:
            if ns & namespaces:
                for i, n in enumerate(counts):
                    sev[i] += n
        return tuple(sev)


def read_previous(doc: "dict | Previous | None") -> Previous | None:
    """The parts of a previous summary.json the next report needs; None when unusable."""
    if isinstance(doc, Previous):  # read already (job.report.load_previous)
        return doc
    if not isinstance(doc, dict) or doc.get("schemaVersion") != SCHEMA_VERSION:
        return None
    try:
        table = doc["findings"]["keys"]
        keys = [(str(p), str(v)) for p, v, _sev in table]
        severities = [_SEVERITY_NAMES.get(s, "Unknown") for _p, _v, s in table]
        findings = {}
        for ns, kind, name, ids in doc["findings"]["workloads"]:
            positions = _positions(ids)
            if positions and max(positions) >= len(keys):
                return None
            findings[(str(ns), str(kind), str(name))] = positions
        history = tuple((str(h["takenAt"]), _by_severity(h["vulnerabilities"])) for h in doc.get("history", ()))
        if not history:
            history = ((str(doc["takenAt"]), _by_severity(doc["totals"]["vulnerabilities"])),)
        images = tuple((frozenset(map(str, i["namespaces"])), _by_severity(i["vulnerabilities"]))
                       for i in doc.get("images", ()))
        index = {key: i for i, key in enumerate(keys)}
        workload_keys = list(findings)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError, RecursionError):
        return None  # damaged or edited by hand: no comparison rather than a failed run
    first_seen, problem = _read_first_seen(doc["findings"].get("firstSeen", []), workload_keys, findings, len(keys))
    return Previous(str(doc["takenAt"]), keys, severities, index, findings, history, images, first_seen,
                    day_of(str(doc["takenAt"])), problem)


def _positions(ids: Any) -> array:
    """A workload's key positions: a JSON list of ints, decoded or still as its text (lean_summary)."""
    if not isinstance(ids, msgspec.Raw):
        return array("I", ids)
    text = bytes(ids)
    if text[:1] != b"[" or text[-1:] != b"]":
        raise ValueError("not a list")
    inner = text[1:-1]
    # int() of each item's text: a float, a string or a list is a ValueError, as array() refuses them
    return array("I", map(int, inner.split(b","))) if inner.strip() else array("I")


class _Findings(msgspec.Struct):
    keys: list[tuple[str, str, str]]
    workloads: list[tuple[str, str, str, msgspec.Raw]]
    firstSeen: Any = msgspec.field(default_factory=list)


class _Summary(msgspec.Struct):
    schemaVersion: Any = None
    takenAt: Any = None
    findings: _Findings | None = None
    history: Any = msgspec.field(default_factory=list)
    images: Any = msgspec.field(default_factory=list)
    totals: Any = None


_LEAN = msgspec.json.Decoder(_Summary)


def lean_summary(data: bytes) -> dict | None:
    """What read_previous reads of a summary.json, decoded without the rest, and each workload's key
    positions left as text until read_previous packs them (a million ints at 50,000 pods held at once
    with the whole document were the report stage's peak); None when it is not shaped as this job
    writes it: decode_json and read_previous then judge it the careful way, with their messages."""
    try:
        lean = _LEAN.decode(data)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return None
    if lean.findings is None or not isinstance(lean.takenAt, str):
        return None
    doc: dict[str, Any] = {"schemaVersion": lean.schemaVersion, "takenAt": lean.takenAt,
                           "findings": {"keys": lean.findings.keys, "workloads": lean.findings.workloads,
                                        "firstSeen": lean.findings.firstSeen},
                           "history": lean.history, "images": lean.images}
    if lean.totals is not None:
        doc["totals"] = lean.totals
    return doc


def _read_first_seen(rows: Any, workloads: list, findings: dict, nkeys: int) -> tuple[dict, str]:
    """findings.firstSeen: [[workload position, "YYYY-MM-DD", [key position, ...]], ...]. Damaged: start
    afresh (every earlier finding counts as first seen at that run), with a reason to warn about."""
    out: dict[tuple[str, str, str], dict[int, int]] = {}
    try:
        if not isinstance(rows, list):
            raise TypeError
        for w, date, ids in rows:
            day = day_of(date) if isinstance(date, str) else 0
            if day <= 0 or not isinstance(w, int) or isinstance(w, bool) or w < 0 or not isinstance(ids, list):
                raise ValueError
            days = out.setdefault(workloads[w], {})
            for i in ids:
                if not isinstance(i, int) or not 0 <= i < nkeys:
                    raise ValueError
                days[i] = day
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return {}, "its first-seen days are damaged: earlier findings count from that run"
    return out, ""


def _by_severity(counts: dict[str, Any]) -> tuple[int, ...]:
    return tuple(_count(counts.get(s, 0)) for s in SEVERITIES)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("not a count")
    return value
