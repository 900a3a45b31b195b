"""Stage files: the snapshot and scan results as JSON, so a run can be replayed stage by stage.

`imvjob snapshot` writes snapshot.json, `imvjob scan` reads it and writes scan.json, and
`apply`, `report` and `notify` read both.
"""
from __future__ import annotations

import contextlib
import gc
import json
from pathlib import Path
from typing import Any, Iterator

import orjson

from job.errors import ConfigError
from job.model import (ApplyOutcome, Container, ContainerKind, Feature, ImageRef, Namespace, Pod, Problem,
                       ScanResult, ScanState, Snapshot, Vulnerability, VulnReport, Workload)

SNAPSHOT_FILE = "snapshot.json"
SCAN_FILE = "scan.json"
APPLY_FILE = "apply.json"
FORMAT_VERSION = 1


def _ref_doc(ref: ImageRef | None) -> list[str] | None:
    return None if ref is None else [ref.host, ref.repository, ref.digest]


def _ref(doc: list[str] | None) -> ImageRef | None:
    return None if doc is None else ImageRef(*doc)


def snapshot_to_doc(snap: Snapshot) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "takenAt": snap.taken_at,
        "cluster": snap.cluster,
        "source": snap.source,
        "pages": snap.pages,
        "scope": list(snap.scope) if snap.scope is not None else None,
        "namespaces": [{"name": n.name, "labels": n.labels, "annotations": n.annotations}
                       for n in snap.namespaces.values()],
        "problems": [[p.where, p.message] for p in snap.problems],
        "pods": [
            {"ns": p.namespace, "name": p.name, "uid": p.uid, "workload": [p.workload.kind, p.workload.name],
             "sa": p.service_account, "pullSecrets": list(p.pull_secrets),
             "containers": [[c.name, c.kind.value, c.image, c.container_id, _ref_doc(c.ref), c.problem]
                            for c in p.containers]}
            for p in snap.pods
        ],
    }


def snapshot_from_doc(doc: dict[str, Any]) -> Snapshot:
    _check_version(doc, SNAPSHOT_FILE)
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
    )


def _vuln_doc(v: Vulnerability) -> dict[str, Any]:
    return {"name": v.name, "severity": v.severity, "ns": v.namespace_name, "description": v.description,
            "link": v.link, "fixedBy": v.fixed_by, "metadata": v.metadata, "cvss": v.cvss_score,
            "vector": v.cvss_vector}


def _feature_doc(f: Feature) -> dict[str, Any]:
    return {"name": f.name, "version": f.version, "format": f.version_format, "ns": f.namespace_name,
            "addedBy": f.added_by, "baseScores": list(f.base_scores), "cveIds": list(f.cve_ids),
            "vulnerabilities": [_vuln_doc(v) for v in f.vulnerabilities]}


def results_to_doc(results: dict[ImageRef, ScanResult]) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "results": [
            {"ref": _ref_doc(r.ref), "state": r.state.value, "detail": r.detail, "backend": r.backend,
             "pageUrl": r.page_url,
             "report": None if r.report is None else {
                 "ns": r.report.namespace_name,
                 # Only vulnerable packages matter downstream; dropping the rest keeps the file small.
                 "features": [_feature_doc(f) for f in r.report.vulnerable_features]}}
            for r in sorted(results.values(), key=lambda r: r.ref)
        ],
    }


def results_from_doc(doc: dict[str, Any]) -> dict[ImageRef, ScanResult]:
    _check_version(doc, SCAN_FILE)
    out: dict[ImageRef, ScanResult] = {}
    for r in doc["results"]:
        report = None
        if r["report"] is not None:
            report = VulnReport(
                namespace_name=r["report"]["ns"],
                features=tuple(
                    Feature(name=f["name"], version=f["version"], version_format=f["format"],
                            namespace_name=f["ns"], added_by=f["addedBy"], base_scores=tuple(f["baseScores"]),
                            cve_ids=tuple(f["cveIds"]),
                            vulnerabilities=tuple(
                                Vulnerability(name=v["name"], severity=v["severity"], namespace_name=v["ns"],
                                              description=v["description"], link=v["link"],
                                              fixed_by=v["fixedBy"], metadata=v["metadata"],
                                              cvss_score=v["cvss"], cvss_vector=v["vector"])
                                for v in f["vulnerabilities"]))
                    for f in r["report"]["features"]))
        ref = _ref(r["ref"])
        assert ref is not None
        out[ref] = ScanResult(ref=ref, state=ScanState(r["state"]), report=report, detail=r["detail"],
                              backend=r["backend"], page_url=r["pageUrl"])
    return out


def outcome_to_doc(outcome: ApplyOutcome) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "created": outcome.created, "updated": outcome.updated,
            "deleted": outcome.deleted, "unchanged": outcome.unchanged, "kept": outcome.kept,
            "unmanaged": outcome.unmanaged, "failed": [[p.where, p.message] for p in outcome.failed],
            "dryRun": outcome.dry_run, "target": outcome.target}


def outcome_from_doc(doc: dict[str, Any]) -> ApplyOutcome:
    _check_version(doc, APPLY_FILE)
    return ApplyOutcome(created=doc["created"], updated=doc["updated"], deleted=doc["deleted"],
                        unchanged=doc["unchanged"], kept=doc["kept"], unmanaged=doc["unmanaged"],
                        failed=[Problem(w, m) for w, m in doc["failed"]], dry_run=doc["dryRun"],
                        target=doc["target"])


def _check_version(doc: Any, name: str) -> None:
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{name}: not a stage file of this imvjob version (expected version {FORMAT_VERSION})")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Holds the cyclic garbage collector off while building many objects that hold no cycles
    (decoded JSON, reports parsed from it): with a large heap, the collections that the new
    objects trigger would each scan everything the run already holds. Safe with threads: the
    collector is on again once the last thread that found it on is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def decode_json(data: bytes | str) -> Any:
    """JSON of the API server, registries and stage files. orjson decodes them several times
    faster than json; the cyclic garbage collector is held off meanwhile for large documents
    (decoded JSON holds no cycles, and the collections that tens of thousands of new dicts
    trigger cost more than the decoding). What orjson refuses and json accepts (lone surrogate
    escapes, NaN) is decoded by json, as before."""
    if len(data) < 65536:
        return _decode(data)
    with gc_paused():
        return _decode(data)


def _decode(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def encode_json(doc: Any) -> bytes:
    """Compact UTF-8 JSON, as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it."""
    return orjson.dumps(doc)


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode_json(doc))
    tmp.replace(path)


def read_json(path: Path) -> Any:
    try:
        return decode_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist; run the stage that writes it first") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
