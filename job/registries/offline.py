"""Offline scans: Quay security API responses read from DIR/sha256.<hex>.json, no network.

Only regular files are read, and at most the size cap: an entry can be a FIFO (which would
block), a link to /dev/zero (which never ends) or a socket. Links are followed, so that a
ConfigMap mount (each key a link through `..data/`) works; what they lead to must be a
regular file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from job import files
from job.codec import decode_json
from job.errors import ConfigError
from job.log import RunLog
from job.model import ImageRef, ScanRequest, ScanResult, ScanState
from job.registries.quay import Reader, parse_security_response
from job.registries.refs import ref_problem

BACKEND = "offline"


class NotReadable(Exception):
    pass


def read_regular(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most max_bytes. I/O. Raises FileNotFoundError,
    NotReadable (with the reason) or OSError."""
    try:
        return files.read_regular(path, max_bytes=max_bytes)
    except files.NotRegularFile as exc:
        raise NotReadable(f"{path} is not a regular file ({exc.kind})") from exc
    except files.TooLarge as exc:
        raise NotReadable(f"{path} is larger than {max_bytes // (1024 * 1024)} MiB (--max-response-mb)") from exc


def read_report(*, directory: Path, ref: ImageRef, reader: Reader | None = None,
                max_bytes: int = 64 * 1024 * 1024) -> ScanResult:
    problem = ref_problem(ref)
    if problem:  # the digest names a file: nothing but sha256:<hex> may
        return ScanResult(ref, ScanState.ERROR, detail=problem, backend=BACKEND)
    name = f"{ref.name}.json"
    path = directory / name
    try:
        raw = read_regular(path, max_bytes=max_bytes)
    except FileNotFoundError:
        return ScanResult(ref, ScanState.NOT_FOUND, detail=f"no report in secscan-dir (no file {name} in "
                          f"{directory})", backend=BACKEND)
    except NotReadable as exc:
        return ScanResult(ref, ScanState.ERROR, detail=str(exc), backend=BACKEND)
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


def scan_directory(requests: Sequence[ScanRequest], directory: str, *, log: RunLog, vulnerable_only: bool = False,
                   max_response_mb: int = 64) -> dict[ImageRef, ScanResult]:
    root = Path(directory)
    if not root.is_dir():
        # Every manifest would be "not found"; a wrong path is a configuration error, said once.
        raise ConfigError(f"--secscan-dir {directory} is not a folder")
    results: dict[ImageRef, ScanResult] = {}
    total = len(requests)
    reader = Reader(vulnerable_only=vulnerable_only)
    for done, request in enumerate(requests, 1):
        results[request.ref] = read_report(directory=root, ref=request.ref, reader=reader,
                                           max_bytes=max(1, max_response_mb) * 1024 * 1024)
        log.progress("manifests scanned", done, total)
    return results
