"""Offline scans: Quay security API responses read from DIR/sha256.<hex>.json, no network."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from job.codec import decode_json
from job.errors import ConfigError
from job.log import RunLog
from job.model import ImageRef, ScanRequest, ScanResult, ScanState
from job.registries.quay import Reader, parse_security_response
from job.registries.refs import ref_problem

BACKEND = "offline"


def read_report(*, directory: Path, ref: ImageRef, reader: Reader | None = None) -> ScanResult:
    problem = ref_problem(ref)
    if problem:  # the digest names a file: nothing but sha256:<hex> may
        return ScanResult(ref, ScanState.ERROR, detail=problem, backend=BACKEND)
    name = f"{ref.name}.json"
    path = directory / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ScanResult(ref, ScanState.NOT_FOUND, detail=f"no report in secscan-dir (no file {name} in "
                          f"{directory})", backend=BACKEND)
    except OSError as exc:
        return ScanResult(ref, ScanState.ERROR, detail=f"cannot read {path}: {exc.strerror}", backend=BACKEND)
    try:
        doc = decode_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return ScanResult(ref, ScanState.ERROR, detail=f"{path} is not valid JSON: {str(exc)[:100]}", backend=BACKEND)
    state, report, detail = parse_security_response(doc, reader)
    if state is ScanState.ERROR:
        detail = f"{path}: {detail}"
    return ScanResult(ref, state, report=report, detail=detail, backend=BACKEND)


def scan_directory(requests: Sequence[ScanRequest], directory: str, *, log: RunLog,
                   vulnerable_only: bool = False) -> dict[ImageRef, ScanResult]:
    root = Path(directory)
    if not root.is_dir():
        # Every manifest would be "not found"; a wrong path is a configuration error, said once.
        raise ConfigError(f"--secscan-dir {directory} is not a folder")
    results: dict[ImageRef, ScanResult] = {}
    total = len(requests)
    reader = Reader(vulnerable_only=vulnerable_only)
    for done, request in enumerate(requests, 1):
        results[request.ref] = read_report(directory=root, ref=request.ref, reader=reader)
        log.progress("manifests scanned", done, total)
    return results
