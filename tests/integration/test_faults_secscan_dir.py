"""Offline --secscan-dir entries that are not regular files, or too big: an error for that manifest,
never a hang nor memory exhausted. A ConfigMap mount (links through `..data/`) still reads."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from registry_sim import RecordingLog, compat_bytes, digest

from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests
from job.settings import Settings

pytestmark = pytest.mark.fault

REPO = Path(__file__).resolve().parents[2]


def _ref(name: object) -> ImageRef:
    return ImageRef("quay.io", "org/app", digest(name))


def _name(ref: ImageRef) -> str:
    return f"sha256.{ref.digest.split(':')[1]}.json"


def _scan_within(refs, settings, seconds: float = 10.0):
    """The scan's results, or a failure if it does not end within `seconds` (a hang)."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(
        scan_manifests([ScanRequest(r) for r in refs], settings, secrets=None, log=RecordingLog())), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the scan hangs on a secscan entry"
    return out


@pytest.fixture
def short_dir():
    """A folder with a short path: a Unix socket's path is at most 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ss-"))
    yield path
    shutil.rmtree(path)


def test_entries_that_are_not_regular_files_are_errors_never_a_hang(short_dir):
    tmp_path = short_dir
    refs = {name: _ref(name) for name in ("fifo", "zero", "socket", "folder", "loop", "dangling", "good")}
    os.mkfifo(tmp_path / _name(refs["fifo"]))
    (tmp_path / _name(refs["zero"])).symlink_to("/dev/zero")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / _name(refs["socket"])))
    (tmp_path / _name(refs["folder"])).mkdir()
    (tmp_path / _name(refs["loop"])).symlink_to(_name(refs["loop"]))
    (tmp_path / _name(refs["dangling"])).symlink_to("nowhere.json")
    (tmp_path / _name(refs["good"])).write_bytes(compat_bytes("quay", "noVulns.json"))
    try:
        results = _scan_within(list(refs.values()), Settings(secscan_dir=str(tmp_path)))
    finally:
        listener.close()
    got = {name: (results[ref].state, results[ref].detail) for name, ref in refs.items()}
    path = {name: tmp_path / _name(ref) for name, ref in refs.items()}
    assert got["fifo"] == (ScanState.ERROR, f"{path['fifo']} is not a regular file (a FIFO)")
    assert got["zero"] == (ScanState.ERROR, f"{path['zero']} is not a regular file (a character device)")
    assert got["socket"][0] is ScanState.ERROR and got["socket"][1].startswith(f"cannot read {path['socket']}")
    assert got["folder"] == (ScanState.ERROR, f"{path['folder']} is not a regular file (a folder)")
    assert got["loop"][0] is ScanState.ERROR and got["loop"][1].startswith(f"cannot read {path['loop']}")
    assert got["dangling"][0] is ScanState.NOT_FOUND
    assert got["good"] == (ScanState.SCANNED, "")
    assert all(results[r].state.is_job_error for n, r in refs.items() if n not in ("good", "dangling"))


def test_a_file_larger_than_the_cap_is_an_error_read_no_further(tmp_path):
    big, fits = _ref("big"), _ref("fits")
    with open(tmp_path / _name(big), "wb") as fh:
        fh.truncate(3 * 1024 * 1024)  # sparse: costs no disk
    (tmp_path / _name(fits)).write_bytes(compat_bytes("quay", "noVulns.json"))
    results = _scan_within([big, fits], Settings(secscan_dir=str(tmp_path), max_response_mb=2))
    assert (results[big].state, results[big].detail) == (
        ScanState.ERROR, f"{tmp_path / _name(big)} is larger than 2 MiB (--max-response-mb)")
    assert results[fits].state is ScanState.SCANNED


def test_a_configmap_mount_reads_through_its_links(tmp_path):
    # What the kubelet makes of a ConfigMap: DIR/<key> -> ..data/<key>, ..data -> ..<timestamp>/
    ref, clean = _ref("cm"), _ref("cm-clean")
    stamp = tmp_path / "..2024_05_01_10_00_00.123456789"
    stamp.mkdir()
    (stamp / _name(ref)).write_bytes(compat_bytes("quay", "mixedVulns.json"))
    (stamp / _name(clean)).write_bytes(compat_bytes("quay", "noPackages.json"))
    (tmp_path / "..data").symlink_to(stamp.name)
    for r in (ref, clean):
        (tmp_path / _name(r)).symlink_to(f"..data/{_name(r)}")
    results = _scan_within([ref, clean], Settings(secscan_dir=str(tmp_path)))
    assert results[ref].state is ScanState.SCANNED and results[ref].report.vulnerable_features
    assert results[clean].state is ScanState.SCANNED


def test_the_cli_on_a_fifo_ends_with_exit_2_and_says_why(tmp_path):
    answers = tmp_path / "answers"
    shutil.copytree(REPO / "demo" / "secscan", answers)
    victim = sorted(answers.iterdir())[0]
    victim.unlink()
    os.mkfifo(victim)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "job", "run", "--pods", str(REPO / "demo" / "pods.json"),
                          "--secscan-dir", str(answers), "--output", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert f"{victim} is not a regular file (a FIFO)" in json.dumps(summary)
