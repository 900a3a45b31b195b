"""The scan cache: which manifests a run asks about, and a cache file that can never make a run
wrong (only slower)."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from job import scan_cache
from job.model import Feature, ImageRef, ScanRequest, ScanResult, ScanState, Vulnerability, VulnReport
from job.scan_cache import Entry, fingerprint, load, next_entries, plan, save
from job.settings import Settings

HOUR = 3600.0
NOW = 1_800_000_000.0


def ref(label: str) -> ImageRef:
    return ImageRef("quay.example", "shop/" + label, "sha256:" + hashlib.sha256(label.encode()).hexdigest())


def scanned(r: ImageRef, cve: str = "CVE-2024-1") -> ScanResult:
    vuln = Vulnerability(cve, "High", "debian:12", "d", "https://nvd.example/" + cve, "1.1", {"UpdatedBy": "x"},
                         7.5, "CVSS:3.1/AV:N")
    report = VulnReport("debian:12", (Feature("pkg", "1.0", "dpkg", "debian:12", "sha256:0", (7.5,), (cve,),
                                              (vuln,)),))
    return ScanResult(r, ScanState.SCANNED, report=report, backend="quay", page_url="https://quay.example/x")


def asked(p: scan_cache.Plan) -> list[ImageRef]:
    return [q.ref for q in p.ask]


WEB, DB, NEW = ref("web"), ref("db"), ref("new")


def test_only_new_and_due_manifests_are_asked() -> None:
    cached = {WEB: Entry(scanned(WEB), NOW - 1 * HOUR), DB: Entry(scanned(DB), NOW - 5 * HOUR)}
    p = plan([ScanRequest(WEB), ScanRequest(DB), ScanRequest(NEW)], cached, now=NOW, rescan_after=4 * HOUR)
    assert asked(p) == [DB, NEW]
    assert p.reused == {WEB: cached[WEB]}


@pytest.mark.parametrize("state", [ScanState.QUEUED, ScanState.UNSUPPORTED, ScanState.NOT_FOUND])
def test_an_answer_without_a_report_is_asked_again_sooner(state: ScanState) -> None:
    entry = Entry(ScanResult(WEB, state, detail="not yet"), NOW - 10 * 60)
    assert plan([ScanRequest(WEB)], {WEB: entry}, now=NOW, rescan_after=4 * HOUR).reused == {WEB: entry}
    later = NOW + scan_cache.RECHECK_SECONDS
    assert asked(plan([ScanRequest(WEB)], {WEB: entry}, now=later, rescan_after=4 * HOUR)) == [WEB]
    # Never kept longer than a scanned report would be.
    assert asked(plan([ScanRequest(WEB)], {WEB: entry}, now=NOW, rescan_after=5 * 60)) == [WEB]


def test_an_entry_from_the_future_or_a_zero_setting_is_due() -> None:
    entry = Entry(scanned(WEB), NOW + HOUR)  # a clock set back since
    assert asked(plan([ScanRequest(WEB)], {WEB: entry}, now=NOW, rescan_after=4 * HOUR)) == [WEB]
    assert asked(plan([ScanRequest(WEB)], {WEB: Entry(scanned(WEB), NOW)}, now=NOW, rescan_after=0)) == [WEB]


@pytest.mark.parametrize("state", [ScanState.FAILED, ScanState.ERROR, ScanState.UNREACHABLE,
                                   ScanState.UNAUTHORIZED, ScanState.NO_API])
def test_a_failed_rescan_is_never_answered_from_the_old_report(state: ScanState) -> None:
    old = Entry(scanned(WEB), NOW - 5 * HOUR)
    p = plan([ScanRequest(WEB)], {WEB: old}, now=NOW, rescan_after=4 * HOUR)
    assert asked(p) == [WEB]
    after = next_entries(p.reused, {WEB: ScanResult(WEB, state, detail="boom")}, fetched_at=NOW)
    assert after == {}  # asked again next run; the run's own result for WEB is the failure


def test_the_cache_keeps_only_this_runs_manifests() -> None:
    reused = {WEB: Entry(scanned(WEB), NOW - HOUR)}
    answered = {NEW: scanned(NEW), DB: ScanResult(DB, ScanState.QUEUED, detail="queued")}
    after = next_entries(reused, answered, fetched_at=NOW)
    assert after == {WEB: reused[WEB], NEW: Entry(answered[NEW], NOW), DB: Entry(answered[DB], NOW)}
    # A manifest no run sees any more (DB) is gone after the next one.
    p = plan([ScanRequest(WEB), ScanRequest(NEW)], after, now=NOW + 60, rescan_after=4 * HOUR)
    assert DB not in next_entries(p.reused, {}, fetched_at=NOW + 60)


def test_a_scanned_answer_without_a_report_is_never_kept() -> None:
    assert next_entries({}, {WEB: ScanResult(WEB, ScanState.SCANNED)}, fetched_at=NOW) == {}


# --- the file -----------------------------------------------------------------------------------------

KEY = "k" * 64


def test_a_saved_cache_reads_back_the_same_results(tmp_path: Path) -> None:
    path = tmp_path / scan_cache.FILE
    entries = {WEB: Entry(scanned(WEB), NOW - 1.5), DB: Entry(ScanResult(DB, ScanState.QUEUED, detail="q"), NOW)}
    save(path, entries, key=KEY)
    got, why = load(path, key=KEY, wanted=[WEB, DB, NEW])
    assert why == "" and got == entries
    assert load(path, key=KEY, wanted=[DB]) == ({DB: entries[DB]}, "")
    assert not [p for p in tmp_path.iterdir() if p.name != scan_cache.FILE]  # no temporary file left


def test_no_cache_file_is_no_warning(tmp_path: Path) -> None:
    assert load(tmp_path / "none.json.gz", key=KEY, wanted=[WEB]) == ({}, "")


def _write_lines(path: Path, *lines: object) -> None:
    path.write_bytes(gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines)))


def _saved_lines(tmp_path: Path) -> list[dict]:
    """What save() writes for WEB: the head, its advisory, its package, its entry."""
    saved = tmp_path / "saved.json.gz"
    save(saved, {WEB: Entry(scanned(WEB), NOW)}, key=KEY)
    return [json.loads(line) for line in gzip.decompress(saved.read_bytes()).splitlines()]


def test_a_package_shared_by_images_is_written_and_held_once(tmp_path: Path) -> None:
    path = tmp_path / scan_cache.FILE
    web, db = scanned(WEB), scanned(DB)
    shared = dataclasses.replace(db, report=VulnReport("debian:12", web.report.features))
    save(path, {WEB: Entry(web, NOW), DB: Entry(shared, NOW), NEW: Entry(scanned(NEW), NOW)}, key=KEY)
    lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    # NEW's package is the same as WEB's, by value: one package, one advisory.
    assert [next(iter(line)) for line in lines[1:3]] == ["advisory", "package"]
    assert sum("package" in line or "advisory" in line for line in lines) == 2
    got, _ = load(path, key=KEY, wanted=[WEB, DB, NEW])
    assert got[WEB].result == web and got[DB].result == shared
    assert got[WEB].result.report.features[0] is got[NEW].result.report.features[0]


@pytest.mark.parametrize("case, reason", [
    ("not gzip", "damaged"),
    ("cut short", "damaged"),
    ("other schema", "schema"),
    ("other key", "another cluster"),
    ("failure kept", "cannot be kept"),
    ("scanned without report", "cannot be kept"),
    ("wrong field", "damaged"),
    ("package wrong field", "damaged"),
    ("advisory wrong field", "damaged"),
    ("package not held", "packages names a line not written before it"),
    ("no fetch time", "fetch time"),
    ("fetch time beyond a float", "fetch time"),
    ("advisory score beyond a float", "advisory.cvss is not a finite number"),
    ("package score beyond a float", "package.baseScores[0] is not a finite number"),
    ("state not a string", "state"),
    ("twice", "twice"),
    ("a folder", "folder"),
])
def test_a_damaged_or_foreign_cache_is_ignored_with_a_reason(tmp_path: Path, case: str, reason: str) -> None:
    path = tmp_path / scan_cache.FILE
    head, advisory, package, line = _saved_lines(tmp_path)
    if case == "not gzip":
        path.write_bytes(b"{}\n")
    elif case == "cut short":
        save(path, {WEB: Entry(scanned(WEB), NOW)}, key=KEY)
        path.write_bytes(path.read_bytes()[:-20])
    elif case == "other schema":
        _write_lines(path, {**head, "schema": 2}, advisory, package, line)
    elif case == "other key":
        _write_lines(path, {**head, "key": "other"}, advisory, package, line)
    elif case == "failure kept":
        line.update(state="unreachable", ns=None, packages=[])
        _write_lines(path, head, advisory, package, line)
    elif case == "scanned without report":
        line.update(ns=None, packages=[])
        _write_lines(path, head, advisory, package, line)
    elif case == "wrong field":
        line["detail"] = 7
        _write_lines(path, head, advisory, package, line)
    elif case == "package wrong field":
        package["package"]["vulnerabilities"] = {}
        _write_lines(path, head, advisory, package, line)
    elif case == "advisory wrong field":
        advisory["advisory"]["metadata"] = "x"
        _write_lines(path, head, advisory, package, line)
    elif case == "package not held":
        line["packages"] = [1]
        _write_lines(path, head, advisory, package, line)
    elif case == "no fetch time":
        line["at"] = "yesterday"
        _write_lines(path, head, advisory, package, line)
    elif case == "fetch time beyond a float":
        line["at"] = 10**400
        _write_lines(path, head, advisory, package, line)
    elif case == "advisory score beyond a float":
        advisory["advisory"]["cvss"] = -10**400
        _write_lines(path, head, advisory, package, line)
    elif case == "package score beyond a float":
        package["package"]["baseScores"] = [10**400]
        _write_lines(path, head, advisory, package, line)
    elif case == "state not a string":
        line["state"] = ["scanned"]
        _write_lines(path, head, advisory, package, line)
    elif case == "twice":
        _write_lines(path, head, advisory, package, line, line)
    else:
        path.mkdir()
    got, why = load(path, key=KEY, wanted=[WEB])
    assert got == {} and reason in why


def test_a_cache_larger_than_its_bound_is_not_read(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / scan_cache.FILE
    save(path, {WEB: Entry(scanned(WEB), NOW)}, key=KEY)
    monkeypatch.setattr(scan_cache, "MAX_FILE_BYTES", path.stat().st_size - 1)
    got, why = load(path, key=KEY, wanted=[WEB])
    assert got == {} and "larger than" in why


@pytest.mark.parametrize("lines, words", [(False, f"more than {scan_cache.MAX_LINE_BYTES >> 20} MiB"),
                                          (True, f"more than {scan_cache.MAX_TEXT_BYTES >> 20} MiB unzipped")])
def test_a_cache_that_unzips_past_its_bounds_is_not_read(tmp_path: Path, lines: bool, words: str) -> None:
    """A few MB of gzip: one line that never ends, or lines within their bound past the whole file's."""
    path = tmp_path / scan_cache.FILE
    head, advisory, _, _ = _saved_lines(tmp_path)
    text = (json.dumps(advisory) + " " * (8 << 20) + "\n").encode() if lines else b" " * (1 << 20)
    member = gzip.compress(text, compresslevel=9)
    with path.open("wb") as fh:
        fh.write(gzip.compress((json.dumps(head) + "\n").encode()))
        for _ in range(scan_cache.MAX_TEXT_BYTES // len(text) + 2):
            fh.write(member)
    got, why = load(path, key=KEY, wanted=[WEB])
    assert got == {} and words in why, why


def test_the_worst_a_cache_file_unzips_to_fits_the_cronjobs_memory() -> None:
    # A few kB of gzip can unzip to the text bound; a run that dies reading it dies again at every
    # run after it, before the file can be rewritten.
    limit = re.search(r"limits:\n(?:\s+cpu: .*\n)?\s+memory: (\d+)Mi",
                      (Path(__file__).parents[2] / "cronjob.yaml").read_text())
    assert limit and scan_cache.WORST_HELD_BYTES < int(limit[1]) << 20


def test_the_fingerprint_follows_the_cluster_and_the_registry_settings() -> None:
    base = fingerprint(Settings(), cluster="prod")
    assert base == fingerprint(Settings(read_timeout=5.0, no_reports=True), cluster="prod")
    assert base != fingerprint(Settings(), cluster="test")
    for over in ({"clair_url": "https://clair.example", "clair_host": ("q.example",)}, {"harbor_host": ("h.example",)},
                 {"insecure_registry": ("q.example",)}, {"quay_token_host": ("q.example",)}):
        assert base != fingerprint(Settings(**over), cluster="prod"), over
