"""Stage files: the snapshot and scan results as JSON, so a run can be replayed stage by stage.

`imvjob snapshot` writes snapshot.json, `imvjob scan` reads it and writes scan.json, and
`apply`, `report` and `notify` read both. A whole run (`imvjob run`) leaves them gzipped
(snapshot.json.gz, scan.json.gz) with apply.json, so that its report and mail can be replayed.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import orjson

from job.codec import (MAX_STAGE_LINE_BYTES, MAX_STAGE_TEXT_BYTES, atomic_gzip, atomic_open, decode_json, encode_json,
                       newest, open_stage_file, read_json, stage_file_error, write_json)
from job.files import NotRegularFile, TooLarge, capped_lines
from job.errors import ConfigError
from job.model import (ApplyOutcome, Container, ContainerKind, Feature, ImageRef, Namespace, Pod, Problem,
                       ScanResult, ScanState, Snapshot, Vulnerability, VulnReport, Workload)
from job.shapes import COUNTS_BY_KEY, Choice, Maybe, Strings, misfit

SNAPSHOT_FILE = "snapshot.json"
SCAN_FILE = "scan.json"
APPLY_FILE = "apply.json"
FORMAT_VERSION = 1


def _ref_doc(ref: ImageRef | None) -> list[str] | None:
    return None if ref is None else [ref.host, ref.repository, ref.digest]


def _ref(doc: list[str] | None) -> ImageRef | None:
    return None if doc is None else ImageRef(*doc)


def snapshot_to_doc(snap: Snapshot) -> dict[str, Any]:
    return {**_snapshot_head(snap), "pods": [_pod_doc(p) for p in snap.pods]}


def _snapshot_head(snap: Snapshot) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "takenAt": snap.taken_at,
        "cluster": snap.cluster,
        "source": snap.source,
        "pages": snap.pages,
        "scope": list(snap.scope) if snap.scope is not None else None,
        "selector": snap.selector,
        "unsure": sorted(snap.unsure),
        "namespaces": [{"name": n.name, "labels": n.labels, "annotations": n.annotations}
                       for n in snap.namespaces.values()],
        "problems": [[p.where, p.message] for p in snap.problems],
    }


def _pod_doc(p: Pod) -> dict[str, Any]:
    return {"ns": p.namespace, "name": p.name, "uid": p.uid, "workload": [p.workload.kind, p.workload.name],
            "sa": p.service_account, "pullSecrets": list(p.pull_secrets),
            "containers": [[c.name, c.kind.value, c.image, c.container_id, _ref_doc(c.ref), c.problem]
                           for c in p.containers]}


def snapshot_from_doc(doc: dict[str, Any]) -> Snapshot:
    _check_version(doc, SNAPSHOT_FILE)
    _check_shape(doc, _SNAPSHOT_SHAPE, SNAPSHOT_FILE)
    pods = [
        Pod(namespace=p["ns"], name=p["name"], uid=p["uid"], workload=Workload(*p["workload"]),
            service_account=p["sa"], pull_secrets=tuple(p["pullSecrets"]),
            containers=tuple(Container(name=c[0], kind=ContainerKind(c[1]), image=c[2], container_id=c[3],
                                       ref=_ref(c[4]), problem=c[5]) for c in p["containers"]))
        for p in doc["pods"]
    ]
    return Snapshot(
        taken_at=doc["takenAt"], cluster=doc["cluster"], source=doc.get("source", "cluster"),
        pages=doc.get("pages", 0), scope=tuple(doc["scope"]) if doc.get("scope") is not None else None,
        pods=pods,
        namespaces={n["name"]: Namespace(n["name"], n.get("labels") or {}, n.get("annotations") or {})
                    for n in doc["namespaces"]},
        problems=[Problem(w, m) for w, m in doc["problems"]],
        selector=doc.get("selector") or "", unsure=set(doc.get("unsure") or ()),
    )


def _vuln_doc(v: Vulnerability) -> dict[str, Any]:
    return {"name": v.name, "severity": v.severity, "ns": v.namespace_name, "description": v.description,
            "link": v.link, "fixedBy": v.fixed_by, "metadata": v.metadata, "cvss": v.cvss_score,
            "vector": v.cvss_vector}


def _package_doc(f: Feature, advisories: list[int]) -> dict[str, Any]:
    """A package of a stage file or the scan cache; its advisories by their numbers (SharedTables)."""
    return {"name": f.name, "version": f.version, "format": f.version_format, "ns": f.namespace_name,
            "addedBy": f.added_by, "baseScores": list(f.base_scores), "cveIds": list(f.cve_ids),
            "vulnerabilities": advisories}


def write_replay(out: Path, *, snap: Snapshot, results: dict[ImageRef, ScanResult],
                 outcome: ApplyOutcome) -> None:
    """What `imvjob report` and `notify` read after a whole run: the stage files, gzipped and
    written one pod or one result at a time, so that a large cluster's run holds no second copy
    of its snapshot or scan results while writing them."""
    _write_gz(out / (SNAPSHOT_FILE + ".gz"), _snapshot_head(snap), "pods", map(_pod_doc, snap.pods))
    write_results(out / SCAN_FILE, results, packed=True)
    write_json(out / APPLY_FILE, outcome_to_doc(outcome))


def write_results(path: Path, results: dict[ImageRef, ScanResult], *, packed: bool = False) -> None:
    """scan.json (scan.json.gz when packed): a line per result, each advisory and package on a line
    of its own before the first result that names it, then named by its number (a 50,000-pod run's
    3,000 results name the same advisories thousands of times: written out in each, they were most
    of the file and of the time taken to zip it). read_results reads it a line at a time."""
    def write(fh: IO[bytes]) -> None:
        lines = _ItemLines(fh, _SCAN_HEAD, "results")
        tables = SharedTables(lines.write)
        for r in sorted(results.values(), key=lambda r: r.ref):
            lines.write(encode_json({"result": {
                "ref": _ref_doc(r.ref), "state": r.state.value, "detail": r.detail, "backend": r.backend,
                "pageUrl": r.page_url,
                # Only vulnerable packages matter downstream; dropping the rest keeps the file small.
                "report": None if r.report is None else {
                    "ns": r.report.namespace_name,
                    "packages": [tables.package(f) for f in r.report.vulnerable_features]}}}))
        lines.close()

    if packed:
        with atomic_gzip(path.with_name(path.name + ".gz")) as gz:
            write(gz)
        return
    with atomic_open(path) as fh:
        write(fh)


#: scan.json's head. Version 1 (before the advisories and packages had lines of their own) is
#: still read: a result a line, or in one piece.
_SCAN_HEAD = {"version": 2}
# The first line of each layout written a line at a time, as _ItemLines writes it.
SCAN_HEAD_LINE, _SCAN_LINES_V1 = (encode_json(head)[:-1] + b',"results":[\n' for head in (_SCAN_HEAD, {"version": 1}))
assert len(SCAN_HEAD_LINE) == len(_SCAN_LINES_V1)


class _ItemLines:
    """{**head, key: [items]} as JSON, an item a line (JSON text holds no raw line break)."""

    def __init__(self, fh: IO[bytes], head: dict[str, Any], key: str) -> None:
        self.fh, self.first = fh, True
        fh.write(encode_json(head)[:-1] + (b"," if head else b"") + encode_json(key) + b":[")

    def write(self, item: bytes) -> None:
        self.fh.write((b"\n" if self.first else b",\n") + item)
        self.first = False

    def close(self) -> None:
        self.fh.write(b"\n]}")


class SharedTables:
    """Numbers each advisory and package, written (`emit`) as a line of its own at its first use:
    known by identity (the registries' reader shares them), else by value. scan.json and the scan
    cache write them so."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.by_id: dict[int, int] = {}
        self.by_value: dict[tuple[str, bytes], int] = {}
        self.counts = {"advisory": 0, "package": 0}
        self._alive: list[object] = []  # what by_id names stays alive, so that its id is not reused

    def _number(self, obj: object, kind: str, doc: Callable[[], dict]) -> int:
        """The line number of `obj` among those of its kind (its document is built only the first
        time this object is met)."""
        n = self.by_id.get(id(obj))
        if n is not None:
            return n
        text = encode_json(doc())
        n = self.by_value.get((kind, text))
        if n is None:
            n = self.by_value[(kind, text)] = self.counts[kind]
            self.counts[kind] += 1
            self.emit(b'{"' + kind.encode() + b'":' + text + b"}")
        self.by_id[id(obj)] = n
        self._alive.append(obj)
        return n

    def advisory(self, v: Vulnerability) -> int:
        return self._number(v, "advisory", lambda: _vuln_doc(v))

    def package(self, f: Feature) -> int:
        return self._number(f, "package", lambda: _package_doc(f, [self.advisory(v) for v in f.vulnerabilities]))


def _write_gz(path: Path, head: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """{**head, key: [*items]} as gzipped JSON, encoded item by item."""
    with atomic_gzip(path) as gz:
        lines = _ItemLines(gz, head, key)
        for item in items:
            lines.write(encode_json(item))
        lines.close()


def results_from_doc(doc: dict[str, Any]) -> dict[ImageRef, ScanResult]:
    _check_version(doc, SCAN_FILE)
    _check_shape(doc, _SCAN_SHAPE, SCAN_FILE)
    shared: dict[Any, Any] = {}
    return {result.ref: result for result in (_result(r, shared) for r in doc["results"])}


def read_results(path: Path) -> dict[ImageRef, ScanResult]:
    """scan.json, or its newer gzipped twin, a line at a time (write_results), so that a large
    cluster's results are never all decoded at once; an older writer's file too (version 1: a
    result a line with its packages written out, or in one piece)."""
    path = newest(path)
    try:
        with open_stage_file(path) as fh:
            head = fh.readline(len(SCAN_HEAD_LINE))  # the heads are of one length
            lines = capped_lines(fh, max_line=MAX_STAGE_LINE_BYTES, max_total=MAX_STAGE_TEXT_BYTES)
            if head == SCAN_HEAD_LINE:
                return _read_result_lines(lines, _ResultTables().add)
            if head == _SCAN_LINES_V1:
                shared: dict[Any, Any] = {}
                return _read_result_lines(lines, lambda item, where: _v1_result(item, where, shared))
        return results_from_doc(read_json(path))
    # A damaged file, a gzip cut short, a FIFO, more than the bounds.
    except (OSError, ValueError, EOFError, zlib.error, NotRegularFile, TooLarge) as exc:
        raise stage_file_error(path, exc) from exc


def _read_result_lines(lines: Iterator[bytes], take: Callable[[Any, str], ScanResult | None]
                       ) -> dict[ImageRef, ScanResult]:
    """The lines of the results array, each given to `take` (which returns a result, or None for a
    line of another kind) up to the array's end, which must end the file."""
    results: dict[ImageRef, ScanResult] = {}
    for i, line in enumerate(lines):
        line = line.rstrip(b"\n")
        if line == b"]}":
            if next(lines, b""):
                raise ValueError("more after the end of the results")
            return results
        result = take(decode_json(line[:-1] if line.endswith(b",") else line), f".results[{i}]")
        if result is not None:
            results[result.ref] = result
    raise ValueError("the results end before their end")


def _damaged(name: str, wrong: str) -> ConfigError:
    return ConfigError(f"{name} is damaged: {wrong.lstrip('.') or 'the document'}; run the stage that writes it again")


def _v1_result(item: Any, where: str, shared: dict[Any, Any]) -> ScanResult:
    wrong = misfit(item, _SCAN_SHAPE["results"][0], where)
    if wrong:
        raise _damaged(SCAN_FILE, wrong)
    return _result(item, shared)


class DamagedLine(ValueError):
    """A line of SharedTables' that is not what they write; the message says where and what."""


class SharedLines:
    """Reads the lines SharedTables writes, scan.json's and the scan cache's: each advisory and package
    into its table, a package naming its advisories by number; a number must name a line read before."""

    def __init__(self) -> None:
        self.advisories: list[Vulnerability] = []
        self.packages: list[Feature] = []

    @staticmethod
    def check(kind: str, doc: Any, where: str) -> None:
        """DamagedLine unless `doc` is of the shape of its kind of line (advisory, package, result)."""
        wrong = misfit(doc, _SCAN_LINE_SHAPES[kind], where)
        if wrong:
            raise DamagedLine(wrong)

    def take(self, kind: str, doc: Any, where: str) -> None:
        """An advisory's or a package's line (`kind`): its document, checked."""
        self.check(kind, doc, where)
        if kind == "advisory":
            self.advisories.append(_advisory_of(doc))
        else:
            self.packages.append(_package_of(doc, self.named(self.advisories, doc["vulnerabilities"],
                                                             f"{where}.vulnerabilities")))

    @staticmethod
    def named(table: list[Any], numbers: list[int], where: str) -> tuple[Any, ...]:
        if not all(0 <= n < len(table) for n in numbers):
            raise DamagedLine(f"{where} names a line not written before it")
        return tuple(table[n] for n in numbers)


class _ResultTables(SharedLines):
    """Reads scan.json's lines (version 2): advisories and packages into their tables, results
    naming the packages by number."""

    def add(self, item: Any, where: str) -> ScanResult | None:
        kind = next(iter(item), None) if isinstance(item, dict) and len(item) == 1 else None
        if kind not in _SCAN_LINE_SHAPES:
            raise _damaged(SCAN_FILE, f"{where} is not an advisory, a package or a result")
        doc, where = item[kind], f"{where}.{kind}"
        try:
            if kind != "result":
                self.take(kind, doc, where)
                return None
            self.check(kind, doc, where)
            report = doc["report"]
            features = None if report is None else self.named(self.packages, report["packages"],
                                                                f"{where}.report.packages")
        except DamagedLine as exc:
            raise _damaged(SCAN_FILE, str(exc)) from None
        ref = _ref(doc["ref"])
        assert ref is not None
        return ScanResult(ref=ref, state=ScanState(doc["state"]), detail=doc["detail"], backend=doc["backend"],
                          page_url=doc["pageUrl"], report=None if report is None else VulnReport(
                              namespace_name=report["ns"], features=features))


def _result(r: dict[str, Any], shared: dict[Any, Any]) -> ScanResult:
    """A result of a stage file; its packages and advisories shared with the other results' equal ones
    (`shared`), as the registries' reader shares them, so that the results replayed take about the
    memory they took in the run."""
    report = None
    if r["report"] is not None:
        report = VulnReport(namespace_name=r["report"]["ns"],
                            features=tuple(_feature(f, shared) for f in r["report"]["features"]))
    ref = _ref(r["ref"])
    assert ref is not None
    return ScanResult(ref=ref, state=ScanState(r["state"]), report=report, detail=r["detail"],
                      backend=r["backend"], page_url=r["pageUrl"])


def _feature(f: dict[str, Any], shared: dict[Any, Any]) -> Feature:
    vulns = tuple(_vulnerability(v, shared) for v in f["vulnerabilities"])
    key = ("f", f["name"], f["version"], f["format"], f["ns"], f["addedBy"], tuple(f["baseScores"]),
           tuple(f["cveIds"]), tuple(map(id, vulns)))  # the advisories are shared already: by identity
    found = shared.get(key)
    if found is None:
        found = shared[key] = _package_of(f, vulns)
    return found


def _vulnerability(v: dict[str, Any], shared: dict[Any, Any]) -> Vulnerability:
    metadata = v["metadata"]
    try:
        meta_key: Any = None if metadata is None else orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # deeper than orjson writes: not shared
        meta_key = object()
    key = ("v", v["name"], v["severity"], v["ns"], v["description"], v["link"], v["fixedBy"], v["cvss"],
           v["vector"], meta_key)
    found = shared.get(key)
    if found is None:
        found = shared[key] = _advisory_of(v)
    return found


def _advisory_of(doc: dict[str, Any]) -> Vulnerability:
    """An advisory of scan.json, either layout (the twin of _vuln_doc)."""
    return Vulnerability(name=doc["name"], severity=doc["severity"], namespace_name=doc["ns"],
                         description=doc["description"], link=doc["link"], fixed_by=doc["fixedBy"],
                         metadata=doc["metadata"], cvss_score=doc["cvss"], cvss_vector=doc["vector"])


def _package_of(doc: dict[str, Any], advisories: tuple[Vulnerability, ...]) -> Feature:
    """A package of scan.json, either layout, with its advisories (the twin of _package_doc)."""
    return Feature(name=doc["name"], version=doc["version"], version_format=doc["format"], namespace_name=doc["ns"],
                   added_by=doc["addedBy"], base_scores=tuple(doc["baseScores"]), cve_ids=tuple(doc["cveIds"]),
                   vulnerabilities=advisories)


def outcome_to_doc(outcome: ApplyOutcome) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "created": outcome.created, "updated": outcome.updated,
            "deleted": outcome.deleted, "unchanged": outcome.unchanged, "kept": outcome.kept,
            "unmanaged": outcome.unmanaged, "failed": [[p.where, p.message] for p in outcome.failed],
            "dryRun": outcome.dry_run, "target": outcome.target, "leftOut": outcome.left_out}


def outcome_from_doc(doc: dict[str, Any]) -> ApplyOutcome:
    _check_version(doc, APPLY_FILE)
    _check_shape(doc, _APPLY_SHAPE, APPLY_FILE)
    return ApplyOutcome(created=doc["created"], updated=doc["updated"], deleted=doc["deleted"],
                        unchanged=doc["unchanged"], kept=doc["kept"], unmanaged=doc["unmanaged"],
                        failed=[Problem(w, m) for w, m in doc["failed"]], dry_run=doc["dryRun"],
                        target=doc["target"], left_out=dict(doc.get("leftOut") or {}))


def _check_version(doc: Any, name: str) -> None:
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{name}: not a stage file of this imvjob version (expected version {FORMAT_VERSION})")


# --- the shape of stage files (job.shapes) ----------------------------------------------------


def _check_shape(doc: Any, shape: Any, name: str) -> None:
    wrong = misfit(doc, shape, "")
    if wrong:
        raise _damaged(name, wrong)


_REF = (str, str, str)
_PROBLEMS = [(str, str)]
_SNAPSHOT_SHAPE = {
    "takenAt": str, "cluster": str, "?source": str, "?pages": int, "?scope": Maybe([str]),
    "?selector": Maybe(str), "?unsure": Maybe([str]),
    "namespaces": [{"name": str, "?labels": Maybe(Strings), "?annotations": Maybe(Strings)}],
    "problems": _PROBLEMS,
    "pods": [{"ns": str, "name": str, "uid": str, "workload": (str, str), "sa": str, "pullSecrets": [str],
              "containers": [(str, Choice(*(k.value for k in ContainerKind)), str, str, Maybe(_REF), str)]}],
}
_VULNERABILITY_SHAPE = {"name": str, "severity": str, "ns": str, "description": str, "link": str, "fixedBy": str,
                        "metadata": Maybe(dict), "cvss": Maybe(float), "vector": str}
_PACKAGE_SHAPE = {"name": str, "version": str, "format": str, "ns": str, "addedBy": str, "baseScores": [float],
                  "cveIds": [str]}
_RESULT_SHAPE = {"ref": _REF, "state": Choice(*(s.value for s in ScanState)), "detail": str, "backend": str,
                 "pageUrl": Maybe(str)}
# scan.json of version 1: each result with its packages and advisories written out.
_SCAN_SHAPE = {"results": [{**_RESULT_SHAPE, "report": Maybe({"ns": str, "features": [
    {**_PACKAGE_SHAPE, "vulnerabilities": [_VULNERABILITY_SHAPE]}]})}]}
# scan.json of version 2: a line per advisory, package (advisories by number) or result (packages by number).
_SCAN_LINE_SHAPES = {"advisory": _VULNERABILITY_SHAPE, "package": {**_PACKAGE_SHAPE, "vulnerabilities": [int]},
                     "result": {**_RESULT_SHAPE, "report": Maybe({"ns": str, "packages": [int]})}}
_APPLY_SHAPE = {"created": [str], "updated": [str], "deleted": [str], "unchanged": [str], "kept": [str],
                "unmanaged": [str], "failed": _PROBLEMS, "dryRun": bool, "target": str,
                "?leftOut": Maybe(COUNTS_BY_KEY)}
