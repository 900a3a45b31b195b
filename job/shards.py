"""Sharded runs: the pods of an Indexed Job each own the manifests whose digest hashes to their
index (scan, apply and clean-up of only those). Each writes its stage files under
OUTPUT/shard-<i>/ and no report (its report would call every other shard's image "not
scanned"); once all have finished, one merge renders the one report from their files.

A shard writes its run marker (run.json) last. The run is identified by IMVJOB_RUN_ID (an
Indexed Job sets it from its pods' `batch.kubernetes.io/job-name` label, see
docs/sharding.md): the shard that finds every shard's marker carrying its own run id merges,
after taking an exclusive lock file, so that exactly one of them does. `imvjob merge` does the
same by hand.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from job import codec, stage_files
from job.errors import ConfigError
from job.model import ApplyOutcome, ImageRef, Problem, ScanResult, Snapshot

RUN_ID_ENV = "IMVJOB_RUN_ID"
MARKER_FILE = "run.json"
_LOCK_PREFIX = ".merge-"


def run_id() -> str:
    return os.environ.get(RUN_ID_ENV, "").strip()


def shard_dir(out: Path, index: int) -> Path:
    return out / f"shard-{index}"


@dataclass(frozen=True, slots=True)
class Marker:
    """What a finished shard says about itself."""

    run_id: str
    index: int
    count: int
    exit_code: int
    finished_at: str


def write_shard(out: Path, *, index: int, count: int, snap: Snapshot, results: dict[ImageRef, ScanResult],
                outcome: ApplyOutcome, exit_code: int, run: str) -> Path:
    """The shard's stage files, then its marker (last: a marker vouches for the files)."""
    folder = shard_dir(out, index)
    (folder / MARKER_FILE).unlink(missing_ok=True)
    codec.write_json(folder / stage_files.SNAPSHOT_FILE, stage_files.snapshot_to_doc(snap))
    stage_files.write_results(folder / stage_files.SCAN_FILE, results)
    codec.write_json(folder / stage_files.APPLY_FILE, stage_files.outcome_to_doc(outcome))
    codec.write_json(folder / MARKER_FILE, {
        "version": stage_files.FORMAT_VERSION, "runId": run, "shard": index, "shards": count, "exit": exit_code,
        "finishedAt": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    return folder


def read_marker(folder: Path) -> Marker | None:
    try:
        doc = codec.read_json(folder / MARKER_FILE)
    except ConfigError:
        return None
    if not isinstance(doc, dict) or doc.get("version") != stage_files.FORMAT_VERSION:
        return None
    try:
        return Marker(str(doc["runId"]), int(doc["shard"]), int(doc["shards"]), int(doc["exit"]),
                      str(doc["finishedAt"]))
    except (KeyError, TypeError, ValueError):
        return None


def missing(out: Path, *, run: str, count: int) -> list[int]:
    """The shards of run `run` (of `count`) that have not finished yet."""
    gone = []
    for index in range(count):
        marker = read_marker(shard_dir(out, index))
        if marker is None or marker.run_id != run or marker.count != count or marker.index != index:
            gone.append(index)
    return gone


def claim_merge(out: Path, run: str) -> Path | None:
    """The lock file that makes this process the run's one merger, or None when another has it
    (O_EXCL: atomic on local file systems and NFS v3+)."""
    lock = out / f"{_LOCK_PREFIX}{re.sub(r'[^A-Za-z0-9_.-]', '_', run)}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{os.uname().nodename} {os.getpid()}\n")
    return lock


def forget_other_locks(out: Path, keep: Path) -> None:
    for lock in out.glob(f"{_LOCK_PREFIX}*.lock"):
        if lock != keep:
            lock.unlink(missing_ok=True)


@dataclass(slots=True)
class Merged:
    snapshot: Snapshot
    results: dict[ImageRef, ScanResult]
    outcome: ApplyOutcome
    markers: list[Marker]


def merge(out: Path) -> Merged:
    """Every shard's files as one run: the newest snapshot, the union of the scan results and of
    the apply outcomes. Raises ConfigError unless every shard of one run has finished."""
    folders = sorted(out.glob("shard-*"))
    markers = [m for m in (read_marker(f) for f in folders) if m is not None]
    if not markers:
        raise ConfigError(f"{out}: no finished shard (no shard-*/{MARKER_FILE})")
    newest = max(markers, key=lambda m: m.finished_at)
    absent = missing(out, run=newest.run_id, count=newest.count)
    if absent:
        raise ConfigError(f"{out}: shard {', '.join(map(str, absent))} of {newest.count} has not finished run "
                          f"{newest.run_id or '(no run id)'}")
    snapshots: list[Snapshot] = []
    results: dict[ImageRef, ScanResult] = {}
    outcome = ApplyOutcome()
    for index in range(newest.count):
        folder = shard_dir(out, index)
        snapshots.append(stage_files.snapshot_from_doc(codec.read_json(folder / stage_files.SNAPSHOT_FILE)))
        results.update(stage_files.read_results(folder / stage_files.SCAN_FILE))
        part = stage_files.outcome_from_doc(codec.read_json(folder / stage_files.APPLY_FILE))
        for name in ("created", "updated", "deleted", "unchanged", "kept", "unmanaged"):
            getattr(outcome, name).extend(getattr(part, name))
        outcome.failed.extend(part.failed)
        outcome.dry_run = outcome.dry_run or part.dry_run
        outcome.target = part.target
    for name in ("created", "updated", "deleted", "unchanged", "kept", "unmanaged"):
        getattr(outcome, name).sort()
    snapshot = max(snapshots, key=lambda s: s.taken_at)
    # Problems a shard met on its own (service accounts it could not read) stay in the report.
    seen = {(p.where, p.message) for p in snapshot.problems}
    for other in snapshots:
        for problem in other.problems:
            if (problem.where, problem.message) not in seen:
                seen.add((problem.where, problem.message))
                snapshot.problems.append(Problem(problem.where, problem.message))
    return Merged(snapshot, results, outcome, [read_marker(shard_dir(out, i)) for i in range(newest.count)])
