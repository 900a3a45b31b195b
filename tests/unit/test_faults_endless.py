"""Files in the output folder that never end or hold far more than a run writes: a stage file
(snapshot.json, scan.json, apply.json, plain or gzipped) and the previous run's summary.json.

Each is a FIFO (read, it would wait for a writer for ever), a sparse file of a GiB, or a gzip
bomb (a few MB that unzip to a GiB). A stage file is one clear error line and exit 1; a summary.json
is skipped with a warning, as a damaged one is. Neither makes the job wait, or hold more than the
bound of what it reads (files.py), which the memory peaks below check.
"""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from job import codec, stage_files
from job.report.writer import MAX_SUMMARY_BYTES
from tests.planted import GIB, fifo, gzip_bomb, peak_while, sparse
from tests.unit.test_faults_input import DEMO, assert_clean, assert_one_error_line, invoke

#: What reading may hold of a file it refuses: its bound, and the chunks that found it out.
HELD = codec.MAX_STAGE_TEXT_BYTES + (64 << 20)


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stages")
    for stage in ("snapshot", "scan", "apply"):
        assert invoke([stage, *DEMO, "-o", str(out)]).exit_code == 0
    return out


def copy_of(stages: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(stages, out)
    return out


# --- stage files -------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", [stage_files.SNAPSHOT_FILE, stage_files.SCAN_FILE, stage_files.APPLY_FILE])
def test_a_fifo_as_a_stage_file_is_one_error_line_not_a_wait(stages: Path, tmp_path: Path, name: str) -> None:
    out = copy_of(stages, tmp_path)
    (out / (name + ".gz")).unlink(missing_ok=True)
    fifo(out / name)
    assert_one_error_line(invoke(["report", *DEMO, "-o", str(out)]), name, "FIFO")


@pytest.mark.parametrize("name", [stage_files.SNAPSHOT_FILE, stage_files.APPLY_FILE])
def test_a_huge_stage_file_is_one_error_line_within_its_bound(stages: Path, tmp_path: Path, name: str) -> None:
    out = copy_of(stages, tmp_path)
    (out / (name + ".gz")).unlink(missing_ok=True)
    sparse(out / name)
    result, peak = peak_while(lambda: invoke(["report", *DEMO, "-o", str(out)]))
    assert_one_error_line(result, name, f"more than {codec.MAX_STAGE_TEXT_BYTES >> 20} MiB")
    assert peak < HELD, f"reading held {peak >> 20} MiB"


@pytest.mark.parametrize("name", [stage_files.SNAPSHOT_FILE, stage_files.SCAN_FILE])
def test_a_gzip_bomb_as_a_stage_file_is_one_error_line_within_its_bound(stages: Path, tmp_path: Path,
                                                                         name: str) -> None:
    out = copy_of(stages, tmp_path)
    (out / name).unlink(missing_ok=True)
    # scan.json: its first line, then one line that never ends (a line is read whole).
    head = stage_files.SCAN_HEAD_LINE if name == stage_files.SCAN_FILE else b""
    gzip_bomb(out / (name + ".gz"), head=head)
    result, peak = peak_while(lambda: invoke(["report", *DEMO, "-o", str(out)]))
    bound = codec.MAX_STAGE_LINE_BYTES if name == stage_files.SCAN_FILE else codec.MAX_STAGE_TEXT_BYTES
    assert_one_error_line(result, name, f"more than {bound >> 20} MiB")
    assert peak < HELD, f"reading held {peak >> 20} MiB"


def test_scan_json_lines_beyond_the_whole_files_bound_are_one_error_line(stages: Path, tmp_path: Path) -> None:
    """Short lines, endless: each is read, and the total is bounded too."""
    out = copy_of(stages, tmp_path)
    line = next(line for line in (stages / stage_files.SCAN_FILE).open("rb") if line.startswith(b'{"advisory"'))  # one the stage wrote, read again and again
    member = gzip.compress(line * ((1 << 20) // len(line)), compresslevel=9)
    (out / stage_files.SCAN_FILE).unlink(missing_ok=True)
    with (out / (stage_files.SCAN_FILE + ".gz")).open("wb") as fh:
        fh.write(gzip.compress(stage_files.SCAN_HEAD_LINE))
        for _ in range(GIB >> 20):
            fh.write(member)
    result = invoke(["report", *DEMO, "-o", str(out)])
    assert_one_error_line(result, stage_files.SCAN_FILE, f"more than {codec.MAX_STAGE_TEXT_BYTES >> 20} MiB")


# --- the previous run's summary.json ----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_fifo_as_the_previous_summary_is_skipped_not_waited_for(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    fifo(out / "summary.json")
    result = invoke(["run", *DEMO, "-o", str(out)])
    assert_clean(result, (0,))
    assert "warning: previous run" in result.output and "FIFO" in result.output
    assert "comparison skipped" in (out / "report.html").read_text()
    assert (out / "summary.json").is_file()  # this run's, in the FIFO's place


@pytest.mark.timeout(30)
def test_a_fifo_given_as_the_previous_summary_is_skipped_not_waited_for(tmp_path: Path) -> None:
    fifo(tmp_path / "previous.json")
    result = invoke(["run", *DEMO, "-o", str(tmp_path / "out"), "--previous", str(tmp_path / "previous.json")])
    assert_clean(result, (0,))
    assert "comparison skipped" in result.output and "FIFO" in result.output


def test_a_huge_previous_summary_is_skipped_within_its_bound(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sparse(out / "summary.json")
    result, peak = peak_while(lambda: invoke(["run", *DEMO, "-o", str(out)]))
    assert_clean(result, (0,))
    assert "comparison skipped" in result.output
    assert f"larger than {MAX_SUMMARY_BYTES >> 20} MiB" in result.output
    assert peak < MAX_SUMMARY_BYTES + (64 << 20), f"reading held {peak >> 20} MiB"
