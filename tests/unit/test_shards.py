"""Sharded runs on disk: a shard's files and marker, knowing when every shard of a run is done,
one merger only, and the merge of their files into one run."""
from __future__ import annotations

import pytest

from job import shards
from job.errors import ConfigError
from job.model import (ApplyOutcome, Container, ContainerKind, ImageRef, Pod, Problem, ScanResult, ScanState,
                       Snapshot, Workload)

REFS = [ImageRef("quay.io", f"shop/app{i}", "sha256:" + f"{i:x}" * 64) for i in range(1, 4)]


def snapshot(taken_at: str, *problems: Problem) -> Snapshot:
    pods = [Pod("a", f"p{i}", "u", Workload("Pod", f"p{i}"), "default", (),
                (Container("c", ContainerKind.CONTAINER, str(r), f"cri-o://{i}", r),)) for i, r in enumerate(REFS)]
    return Snapshot(taken_at, "test", pods, {}, list(problems))


def write(out, index, count, *, run="r1", taken_at="2026-11-29T10:00:00.000000Z", created=(), problems=()):
    ref = REFS[index]
    shards.write_shard(out, index=index, count=count, snap=snapshot(taken_at, *problems),
                       results={ref: ScanResult(ref, ScanState.QUEUED, detail="queued")},
                       outcome=ApplyOutcome(created=list(created), unchanged=[f"a/{index}"]), exit_code=0, run=run)


def test_a_run_is_complete_only_when_every_shard_of_it_has_finished(tmp_path) -> None:
    write(tmp_path, 1, 3, run="r0")  # a shard folder left by the previous run
    write(tmp_path, 0, 3)
    assert shards.missing(tmp_path, run="r1", count=3) == [1, 2]
    with pytest.raises(ConfigError, match="shard 1, 2 of 3 has not finished run r1"):
        shards.merge(tmp_path)
    write(tmp_path, 1, 3)
    write(tmp_path, 2, 3)
    assert shards.missing(tmp_path, run="r1", count=3) == []


def test_only_one_process_gets_to_merge_a_run(tmp_path) -> None:
    first = shards.claim_merge(tmp_path, "job/x 1")
    assert first is not None and first.exists()
    assert shards.claim_merge(tmp_path, "job/x 1") is None
    other = shards.claim_merge(tmp_path, "r2")
    shards.forget_other_locks(tmp_path, other)
    assert not first.exists() and other.exists()


def test_the_merge_is_the_newest_snapshot_and_every_shards_results_and_outcome(tmp_path) -> None:
    write(tmp_path, 0, 3, created=["a/x"], problems=(Problem("service accounts", "cannot read"),))
    write(tmp_path, 1, 3, taken_at="2026-11-29T10:00:05.000000Z", created=["a/b"])
    write(tmp_path, 2, 3)
    merged = shards.merge(tmp_path)
    assert merged.snapshot.taken_at == "2026-11-29T10:00:05.000000Z"
    assert set(merged.results) == set(REFS)
    assert merged.outcome.created == ["a/b", "a/x"] and merged.outcome.unchanged == ["a/0", "a/1", "a/2"]
    assert [p.where for p in merged.snapshot.problems] == ["service accounts"]
    assert [m.index for m in merged.markers] == [0, 1, 2] and {m.run_id for m in merged.markers} == {"r1"}


def test_a_marker_is_written_after_the_files_it_vouches_for(tmp_path) -> None:
    write(tmp_path, 0, 1)
    folder = shards.shard_dir(tmp_path, 0)
    marker = (folder / shards.MARKER_FILE).stat().st_mtime_ns
    assert all(marker >= (folder / name).stat().st_mtime_ns for name in ("snapshot.json", "scan.json", "apply.json"))
