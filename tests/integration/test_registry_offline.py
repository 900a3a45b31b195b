"""Offline scans from a secscan folder (Quay security responses as files), no network."""
from __future__ import annotations

import time

import pytest
from registry_sim import RecordingLog, compat_bytes, digest

from job.errors import ConfigError
from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests
from job.settings import Settings


def _ref(name: object) -> ImageRef:
    return ImageRef("quay.io", "org/app", digest(name))


def _write(folder, ref: ImageRef, body: bytes) -> None:
    (folder / f"sha256.{ref.digest.split(':')[1]}.json").write_bytes(body)


def test_secscan_dir_states(tmp_path, monkeypatch):
    # Any attempt at the network would fail loudly.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    refs = {name: _ref(name) for name in ("scanned", "queued", "failed", "unsupported", "missing", "garbage",
                                          "shape")}
    _write(tmp_path, refs["scanned"], compat_bytes("quay", "securityinformation.json"))
    _write(tmp_path, refs["queued"], compat_bytes("quay", "queued.json"))
    _write(tmp_path, refs["failed"], compat_bytes("quay", "failed.json"))
    _write(tmp_path, refs["unsupported"], compat_bytes("quay", "unsupported.json"))
    _write(tmp_path, refs["garbage"], b"<html>oops</html>")
    _write(tmp_path, refs["shape"], b'{"status": "scanned", "data": {"Layer": {"Features": {}}}}')
    traversal = ImageRef("quay.io", "org/app", "sha256:../../etc/x")
    log = RecordingLog()
    results = scan_manifests([ScanRequest(r) for r in [*refs.values(), traversal]],
                             Settings(secscan_dir=str(tmp_path)), secrets=None, log=log)

    got = {name: results[ref] for name, ref in refs.items()}
    assert got["scanned"].state is ScanState.SCANNED and got["scanned"].backend == "offline"
    assert (len(got["scanned"].report.features), len(got["scanned"].report.vulnerable_features)) == (188, 33)
    assert (got["queued"].state, got["queued"].report) == (ScanState.QUEUED, None)
    assert (got["failed"].state, got["unsupported"].state) == (ScanState.FAILED, ScanState.UNSUPPORTED)
    hex_missing = refs["missing"].digest.split(":")[1]
    assert (got["missing"].state, got["missing"].detail) == (
        ScanState.NOT_FOUND, f"no report in secscan-dir (no file sha256.{hex_missing}.json in {tmp_path})")
    assert got["garbage"].state is ScanState.ERROR
    assert got["garbage"].detail.startswith(f"{tmp_path / ('sha256.' + refs['garbage'].digest[7:] + '.json')} is "
                                            "not valid JSON")
    assert got["shape"].state is ScanState.ERROR
    assert got["shape"].detail.endswith(".json: malformed security document: Layer.Features is not a list")
    assert results[traversal].state is ScanState.ERROR and "invalid or unsupported digest" in results[traversal].detail
    assert log.progress_calls[-1] == ("manifests scanned", 8, 8)


def test_a_secscan_dir_that_does_not_exist_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        scan_manifests([ScanRequest(_ref(1))], Settings(secscan_dir=str(tmp_path / "nope")), secrets=None,
                       log=RecordingLog())


def test_three_thousand_manifests_offline(tmp_path):
    samples = [compat_bytes("quay", name) for name in ("mixedVulns.json", "noVulns.json", "queued.json")]
    refs = [_ref(i) for i in range(3000)]
    for i, ref in enumerate(refs):
        _write(tmp_path, ref, samples[i % 3])
    started = time.monotonic()
    results = scan_manifests([ScanRequest(r) for r in refs], Settings(secscan_dir=str(tmp_path)), secrets=None,
                             log=RecordingLog())
    elapsed = time.monotonic() - started
    assert len(results) == 3000
    assert sum(r.state is ScanState.SCANNED for r in results.values()) == 2000
    print(f"\n3000 manifests from a secscan dir (1000 x 88 KB, 1000 x 7 KB, 1000 x 0.3 KB): {elapsed:.2f}s")
