"""scan.json and scan.json.gz: each advisory and package written once, on a line of its own, and
results naming them; read back a line at a time, sharing them as the registries' reader does. An
older writer's file (version 1: a result a line with everything written out, or in one piece) is
still read."""
from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from job import stage_files
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


def v1_lines(results: dict) -> bytes:
    """scan.json as version 1 wrote it: a result a line, its packages and advisories written out."""
    def vuln(v):
        return {"name": v.name, "severity": v.severity, "ns": v.namespace_name, "description": v.description,
                "link": v.link, "fixedBy": v.fixed_by, "metadata": v.metadata, "cvss": v.cvss_score,
                "vector": v.cvss_vector}

    def feature(f):
        return {"name": f.name, "version": f.version, "format": f.version_format, "ns": f.namespace_name,
                "addedBy": f.added_by, "baseScores": list(f.base_scores), "cveIds": list(f.cve_ids),
                "vulnerabilities": [vuln(v) for v in f.vulnerabilities]}

    docs = [{"ref": [r.ref.host, r.ref.repository, r.ref.digest], "state": r.state.value, "detail": r.detail,
             "backend": r.backend, "pageUrl": r.page_url,
             "report": None if r.report is None else {"ns": r.report.namespace_name,
                                                      "features": [feature(f) for f in r.report.features]}}
            for r in sorted(results.values(), key=lambda r: r.ref)]
    return b'{"version":1,"results":[\n' + b",\n".join(json.dumps(d).encode() for d in docs) + b"\n]}"


@pytest.mark.parametrize("packed", [False, True])
def test_results_read_back_are_the_results_written(tmp_path: Path, packed: bool) -> None:
    results = many_results(20)
    stage_files.write_results(tmp_path / stage_files.SCAN_FILE, results, packed=packed)
    written = tmp_path / (stage_files.SCAN_FILE + (".gz" if packed else ""))
    text = gzip.decompress(written.read_bytes()) if packed else written.read_bytes()
    doc = json.loads(text)
    kinds = [next(iter(item)) for item in doc["results"]]
    # 40 shared advisories and 20 own ones, the base package and 20 own ones, 21 results: a line each.
    assert doc["version"] == 2 and len(text.splitlines()) == len(kinds) + 2
    assert (kinds.count("advisory"), kinds.count("package"), kinds.count("result")) == (60, 21, 21)
    assert text.count(LONG.encode()) == 60  # each advisory's text once, not once per manifest
    again = stage_files.read_results(tmp_path / stage_files.SCAN_FILE)
    assert again == results and list(again) == sorted(results)
    # Equal advisories and packages of different manifests are one object each, as in the run.
    firsts = [r.report.features[0] for r in again.values() if r.report is not None]
    assert all(f is firsts[0] for f in firsts)


def test_equal_advisories_of_distinct_objects_are_written_once(tmp_path: Path) -> None:
    ref_a, ref_b = make_ref("team/a"), make_ref("team/b")
    results = {ref: make_result(ref, make_feature("openssl", "3.0.1", make_vuln("CVE-1", "High", description=LONG)))
               for ref in (ref_a, ref_b)}  # built apart: equal, not the same objects
    assert results[ref_a].report.features[0] is not results[ref_b].report.features[0]
    stage_files.write_results(tmp_path / stage_files.SCAN_FILE, results)
    assert (tmp_path / stage_files.SCAN_FILE).read_bytes().count(LONG.encode()) == 1
    assert stage_files.read_results(tmp_path / stage_files.SCAN_FILE) == results


@pytest.mark.parametrize("layout", ["lines", "one piece"])
def test_an_older_writers_file_is_still_read(tmp_path: Path, layout: str) -> None:
    results = many_results(3)
    text = v1_lines(results)
    if layout == "one piece":
        text = json.dumps(json.loads(text), indent=1).encode()
    (tmp_path / stage_files.SCAN_FILE).write_bytes(text)
    again = stage_files.read_results(tmp_path / stage_files.SCAN_FILE)
    assert again == results
    firsts = [r.report.features[0] for r in again.values() if r.report is not None]
    assert all(f is firsts[0] for f in firsts)


@pytest.mark.parametrize("version", [1, 2])
def test_reading_holds_one_result_decoded_at_a_time(tmp_path: Path, version: int) -> None:
    """300 manifests of 41 advisories of ~2 kB each (25 MB of JSON as version 1 wrote it): read
    back, they take what the distinct ones take, and the reading never holds the whole document
    decoded."""
    results = many_results(300)
    whole = len(v1_lines(results))
    assert whole > 20_000_000
    if version == 1:
        (tmp_path / stage_files.SCAN_FILE).write_bytes(v1_lines(results))
    else:
        stage_files.write_results(tmp_path / stage_files.SCAN_FILE, results, packed=True)
        assert len(gzip.decompress((tmp_path / (stage_files.SCAN_FILE + ".gz")).read_bytes())) < whole / 20
    tracemalloc.start()
    try:
        again = stage_files.read_results(tmp_path / stage_files.SCAN_FILE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(again) == 301
    assert peak < whole / 5, f"peak {peak:,} bytes reading {whole:,} bytes of JSON"


def _line_of(kind: str):
    """The index of the first line of `kind` in a written file's lines."""
    return lambda lines: next(i for i, line in enumerate(lines) if line.startswith(b'{"' + kind.encode()))


def _replace(kind: str, old: bytes, new: bytes):
    def damage(lines):
        i = _line_of(kind)(lines)
        return lines[:i] + [lines[i].replace(old, new, 1)] + lines[i + 1:]
    return damage


@pytest.mark.parametrize("damage, words", [
    (lambda lines: lines[:3], "end before their end"),  # cut short
    (lambda lines: lines + [b"[]"], "more after the end"),
    (lambda lines: lines[:2] + [lines[2][:40]] + lines[3:], "cannot read"),  # a line that is not JSON
    (lambda lines: lines[:2] + [b'{"ref": 5},'] + lines[3:], "results[1] is not an advisory, a package or a result"),
    (_replace("result", b'"scanned"', b'"fine"'), ".result.state"),
    (_replace("result", b'"ref":[', b'"ref":[5,'), ".result.ref"),
    (_replace("advisory", b'"severity":"', b'"severity":4,"x":"'), ".advisory.severity"),
    (_replace("package", b'"vulnerabilities":[0', b'"vulnerabilities":[99'), "names a line not written before"),
    (_replace("package", b'"vulnerabilities":[0', b'"vulnerabilities":[-1'), "names a line not written before"),
    (_replace("package", b'"vulnerabilities":[0', b'"vulnerabilities":[true'), ".package.vulnerabilities[0]"),
    (_replace("result", b'"packages":[0', b'"packages":[7'), "report.packages names a line not written before"),
    (_replace("result", b'{"result":{', b'{"result":{},"package":{'), "is not an advisory, a package or a result"),
    # A score no float holds, or none at all: JSON numbers have no bound.
    (_replace("advisory", b'"cvss":', b'"cvss":1' + b"0" * 400 + b',"was":'), ".advisory.cvss is not a finite number"),
    (_replace("advisory", b'"cvss":', b'"cvss":NaN,"was":'), ".advisory.cvss is not a finite number"),
    (_replace("package", b'"baseScores":[', b'"baseScores":[-Infinity],"was":['), ".package.baseScores[0] is not a finite"),
])
def test_a_damaged_file_is_one_clear_error(tmp_path: Path, damage, words: str) -> None:
    stage_files.write_results(tmp_path / stage_files.SCAN_FILE, many_results(4))
    lines = (tmp_path / stage_files.SCAN_FILE).read_bytes().split(b"\n")
    (tmp_path / stage_files.SCAN_FILE).write_bytes(b"\n".join(damage(lines)))
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        stage_files.read_results(tmp_path / stage_files.SCAN_FILE)


@pytest.mark.parametrize("damage, words", [
    (lambda lines: lines[:2] + [b'{"ref": 5},'] + lines[3:], "results[1].ref"),
    (lambda lines: lines[:2] + [lines[2].replace(b'"scanned"', b'"fine"')] + lines[3:], "results[1].state"),
])
def test_a_damaged_older_file_is_one_clear_error(tmp_path: Path, damage, words: str) -> None:
    lines = v1_lines(many_results(4)).split(b"\n")
    (tmp_path / stage_files.SCAN_FILE).write_bytes(b"\n".join(damage(lines)))
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        stage_files.read_results(tmp_path / stage_files.SCAN_FILE)
