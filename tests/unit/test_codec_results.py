"""scan.json and scan.json.gz: written a result a line and read back a line at a time, each package
and advisory shared with the equal ones of other results (as the registries' reader shares them)."""
from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from job import codec
from job.errors import ConfigError
from job.model import ScanState
from tests.factories import make_feature, make_ref, make_result, make_vuln

LONG = "An advisory's text, as long as real ones are. " * 40  # ~1.9 kB


def many_results(n: int, advisories: int = 40) -> dict:
    """n manifests that share one base image's packages and advisories, as a cluster's images do."""
    vulns = [make_vuln(f"CVE-2024-{k:04d}", ("High", "Low", "Critical")[k % 3], fixed_by="2" if k % 2 else "",
                       description=LONG) for k in range(advisories)]
    base = make_feature("openssl", "3.0.1", *vulns)
    results = {}
    for i in range(n):
        ref = make_ref(f"team/app{i}")
        own = make_feature(f"lib{i}", "1.0", make_vuln(f"CVE-2025-{i:04d}", "Medium", description=LONG))
        results[ref] = make_result(ref, base, own)
    queued = make_ref("team/queued")
    results[queued] = make_result(queued, state=ScanState.QUEUED, detail="queued for scanning")
    return results


@pytest.mark.parametrize("packed", [False, True])
def test_results_read_back_are_the_results_written(tmp_path: Path, packed: bool) -> None:
    results = many_results(20)
    codec.write_results(tmp_path / codec.SCAN_FILE, results, packed=packed)
    written = tmp_path / (codec.SCAN_FILE + (".gz" if packed else ""))
    text = gzip.decompress(written.read_bytes()) if packed else written.read_bytes()
    assert json.loads(text)["version"] == 1 and len(text.splitlines()) == len(results) + 2  # a line a result
    again = codec.read_results(tmp_path / codec.SCAN_FILE)
    assert again == results and list(again) == sorted(results)
    # Equal advisories and packages of different manifests are one object each, as in the run.
    firsts = [r.report.features[0] for r in again.values() if r.report is not None]
    assert all(f is firsts[0] for f in firsts)


def test_an_older_writers_file_in_one_piece_is_still_read(tmp_path: Path) -> None:
    results = many_results(3)
    codec.write_results(tmp_path / "lines.json", results)
    doc = json.loads((tmp_path / "lines.json").read_bytes())
    (tmp_path / codec.SCAN_FILE).write_text(json.dumps(doc, indent=1))
    assert codec.read_results(tmp_path / codec.SCAN_FILE) == results


def test_reading_holds_one_result_decoded_at_a_time(tmp_path: Path) -> None:
    """300 manifests of 41 advisories of ~2 kB each (25 MB of JSON): read back, they take what the
    distinct ones take, and the reading never holds the whole document decoded."""
    results = many_results(300)
    codec.write_results(tmp_path / codec.SCAN_FILE, results, packed=True)
    whole = len(gzip.decompress((tmp_path / (codec.SCAN_FILE + ".gz")).read_bytes()))
    assert whole > 20_000_000
    tracemalloc.start()
    try:
        again = codec.read_results(tmp_path / codec.SCAN_FILE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(again) == 301
    assert peak < whole / 5, f"peak {peak:,} bytes reading {whole:,} bytes of JSON"


@pytest.mark.parametrize("damage, words", [
    (lambda lines: lines[:3], "end before their end"),  # cut short
    (lambda lines: lines + [b"[]"], "more after the end"),
    (lambda lines: lines[:2] + [b'{"ref": 5},'] + lines[3:], "results[1].ref"),
    (lambda lines: lines[:2] + [lines[2][:40]] + lines[3:], "cannot read"),  # a line that is not JSON
    (lambda lines: lines[:2] + [lines[2].replace(b'"scanned"', b'"fine"')] + lines[3:], "results[1].state"),
])
def test_a_damaged_file_is_one_clear_error(tmp_path: Path, damage, words: str) -> None:
    codec.write_results(tmp_path / codec.SCAN_FILE, many_results(4))
    lines = (tmp_path / codec.SCAN_FILE).read_bytes().split(b"\n")
    (tmp_path / codec.SCAN_FILE).write_bytes(b"\n".join(damage(lines)))
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        codec.read_results(tmp_path / codec.SCAN_FILE)
