"""The report files in the output folder: what is written, what the next run reads back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from job.model import ApplyOutcome, Problem, ScanState
from job.report import build_context, load_previous, write_reports
from job.report.summary import summary_doc
from tests.factories import (make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot,
                             make_vuln)
from tests.summary_schema import documented_fields, field_paths

WEB = make_ref("shop/web", tag="1")
QUEUED = make_ref("shop/queued")


def run(out: Path, taken_at: str, *vulns, previous_from: Path | None = None):
    """One run's report stage, as the pipeline calls it."""
    snap = make_snapshot([make_pod("shop", "web-1", WEB), make_pod("shop", "worker-1", QUEUED)], taken_at=taken_at)
    results = {WEB: make_result(WEB, make_feature("openssl", "3.0.1", *vulns)),
               QUEUED: make_result(QUEUED, state=ScanState.QUEUED, detail="queued for scanning")}
    previous = load_previous(previous_from or out, current=snap)
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=previous, settings=make_settings())
    return ctx, write_reports(ctx, out)


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_writes_the_three_reports_and_nothing_else(tmp_path):
    ctx, paths = run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"))
    assert paths == [tmp_path / "report.html", tmp_path / "report.xlsx", tmp_path / "summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.xlsx", "summary.json"]
    assert ctx.artifacts == {"html": paths[0], "xlsx": paths[1], "json": paths[2]}


def test_summary_holds_totals_per_severity_namespace_image_and_the_unscanned_with_their_reason(tmp_path):
    run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High", fixed_by="3.0.2"), make_vuln("CVE-2", "Low"))
    doc = summary(tmp_path)
    assert doc["schemaVersion"] == 1
    assert doc["totals"]["vulnerabilities"] == {"Defcon1": 0, "Critical": 0, "High": 1, "Medium": 0, "Low": 1,
                                                "Negligible": 0, "Unknown": 0}
    assert (doc["totals"]["total"], doc["totals"]["fixable"]) == (2, 1)
    assert doc["totals"]["images"] == {"running": 2, "scanned": 1, "vulnerable": 1, "unscanned": 1}
    assert [(n["name"], n["total"], n["highestSeverity"]) for n in doc["namespaces"]] == [("shop", 2, "High")]
    assert [(i["image"], i["state"], i["total"]) for i in doc["images"]] == \
        [("quay.io/shop/web", "scanned", 2), ("quay.io/shop/queued", "queued", 0)]
    assert [(u["image"], u["state"], u["detail"]) for u in doc["unscanned"]] == \
        [("quay.io/shop/queued", "queued", "queued for scanning")]


def test_the_next_run_reports_new_and_resolved_from_the_kept_summary(tmp_path):
    run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"), make_vuln("CVE-2", "Low"))
    ctx, _ = run(tmp_path, "2026-05-02T06:00:00Z", make_vuln("CVE-1", "High"), make_vuln("CVE-3", "Critical"))

    assert [c.vulnerability for c in ctx.changes.new()] == ["CVE-3"]
    assert [c.vulnerability for c in ctx.changes.resolved] == ["CVE-2"]
    assert summary(tmp_path)["changes"]["previousTakenAt"] == "2026-05-01T06:00:00Z"
    assert json.loads((tmp_path / "summary.previous.json").read_text())["takenAt"] == "2026-05-01T06:00:00Z"


def test_rendering_the_same_snapshot_again_still_compares_with_the_run_before(tmp_path):
    run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"))
    run(tmp_path, "2026-05-02T06:00:00Z", make_vuln("CVE-1", "High"), make_vuln("CVE-3", "Critical"))
    again, _ = run(tmp_path, "2026-05-02T06:00:00Z", make_vuln("CVE-1", "High"), make_vuln("CVE-3", "Critical"))

    assert again.changes.previous_taken_at == "2026-05-01T06:00:00Z"
    assert [c.vulnerability for c in again.changes.new()] == ["CVE-3"]
    assert json.loads((tmp_path / "summary.previous.json").read_text())["takenAt"] == "2026-05-01T06:00:00Z"


def test_previous_given_as_a_file(tmp_path):
    first = tmp_path / "first"
    run(first, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"))
    ctx, _ = run(tmp_path / "second", "2026-05-02T06:00:00Z", make_vuln("CVE-2", "High"),
                 previous_from=first / "summary.json")
    assert [c.vulnerability for c in ctx.changes.new()] == ["CVE-2"]


def test_missing_unreadable_or_foreign_previous_is_no_previous(tmp_path):
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    assert load_previous(tmp_path, current=snap) is None
    assert load_previous(tmp_path / "nowhere.json", current=snap) is None
    (tmp_path / "summary.json").write_text("{not json")
    assert load_previous(tmp_path, current=snap) is None
    (tmp_path / "summary.json").write_text(json.dumps({"schemaVersion": 2, "takenAt": "x"}))
    assert load_previous(tmp_path, current=snap) is None
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert load_previous(tmp_path, current=snap) is None


def test_a_failed_render_leaves_the_previous_summary_in_place(tmp_path, monkeypatch):
    run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"))
    before = (tmp_path / "summary.json").read_bytes()

    def broken(ctx, *, dest):
        raise OSError("disk full")

    monkeypatch.setattr("job.report.writer.write_xlsx", broken)
    try:
        run(tmp_path, "2026-05-02T06:00:00Z", make_vuln("CVE-2", "High"))
    except OSError:
        pass
    assert (tmp_path / "summary.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.xlsx", "summary.json"]


def test_every_summary_field_is_documented():
    snap = make_snapshot([make_pod("shop", "web-1", WEB, QUEUED, None)],
                         problems=[Problem("shop/broken", "no containerStatuses")])
    results = {WEB: make_result(WEB, make_feature("openssl", "3.0.1", make_vuln("CVE-1", "High"))),
               QUEUED: make_result(QUEUED, state=ScanState.QUEUED)}
    ctx = build_context(snapshot=snap, results=results, outcome=ApplyOutcome(created=["shop/x"]), previous=None,
                        settings=make_settings())
    paths = set(field_paths(summary_doc(ctx)))
    assert {"coverage[].kind", "apply.dryRun", "unscanned[].state", "history[].takenAt"} <= paths
    assert paths - documented_fields() == set()


def test_the_kept_summary_is_judged_by_its_taken_at_alone_whatever_else_it_holds(tmp_path):
    """The last summary.json is kept as summary.previous.json when it is of another snapshot; only its
    takenAt is read for that (not its findings table), the odd ones the careful way."""
    cases = {
        b'{"findings": {"keys": [[1, 2, 3]]}, "takenAt": "2026-04-30T06:00:00Z"}': True,
        '{"takenAt": "2026-04-30T06:00:00Z", "note": "\\ud800"}'.encode(): True,  # json accepts, orjson not
        b'{"takenAt": 7}': False,
        b'["takenAt", "2026-04-30T06:00:00Z"]': False,
        b'{"takenAt": "2026-04-30T06:00:00Z"': False,  # cut short
        b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b', "takenAt": "2026-04-30T06:00:00Z"}': False,  # too deep for both
    }
    for i, (old, kept) in enumerate(cases.items()):
        out = tmp_path / str(i)
        out.mkdir()
        (out / "summary.json").write_bytes(old)
        run(out, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"))
        previous = out / "summary.previous.json"
        assert previous.exists() is kept, old[:60]
        if kept:
            assert previous.read_bytes() == old


def test_summary_json_is_compact_utf8_json_as_json_writes_it(tmp_path):
    run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1 ünïcode \u2028 \"quoted\"\n", "High"))
    data = (tmp_path / "summary.json").read_bytes()
    assert data == json.dumps(json.loads(data), ensure_ascii=False, separators=(",", ":")).encode()


def test_the_previous_run_read_the_lean_way_is_the_one_read_in_full(tmp_path):
    """load_previous decodes only what it reads of a summary.json, each workload's key positions from
    their text; it reads the same run as decoding the whole, and what it cannot read the quick way
    (odd ids, keys of other types) is judged the careful way, with the same outcome as before."""
    from job.report.previous import lean_summary, read_previous

    run(tmp_path, "2026-05-01T06:00:00Z", make_vuln("CVE-1", "High"), make_vuln("CVE-2", "Low", fixed_by="2"))
    data = (tmp_path / "summary.json").read_bytes()
    lean, full = read_previous(lean_summary(data)), read_previous(json.loads(data))
    assert lean is not None and lean == full and len(lean.keys) == 2
    assert [list(ids) for ids in lean.findings.values()] == [[0, 1]]

    doc = json.loads(data)
    odd_ids = {"[0, 1.5]": None, "[-1]": None, "[4294967296]": None, '["0"]': None, "[[0]]": None,
               "[ ]": [], "[ 1 ,0 ]": [1, 0]}
    for text, expected in odd_ids.items():
        doc["findings"]["workloads"][0][3] = json.loads(text)
        data = json.dumps(doc).replace(json.dumps(json.loads(text)), text).encode()
        quick, careful = read_previous(lean_summary(data)), read_previous(json.loads(data))
        assert (quick is None) is (careful is None) is (expected is None), text
        if expected is not None:
            assert list(next(iter(quick.findings.values()))) == expected == list(next(iter(careful.findings.values())))
    doc["findings"]["workloads"][0][3] = [0]
    doc["findings"]["keys"][0][0] = 7  # not a string: the careful way reads it as "7"
    assert lean_summary(json.dumps(doc).encode()) is None
    assert read_previous(doc).keys[0][0] == "7"


_TWO_RUNS = """
import sys
from pathlib import Path
from job.report import build_context, load_previous, write_reports
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot, make_vuln
out = Path(sys.argv[1])
refs = [make_ref(f"shop/app{i}", tag="1") for i in range(6)]
for taken_at, n in (("2026-05-01T06:00:00Z", 5), ("2026-05-02T06:00:00Z", 7)):
    snap = make_snapshot([make_pod(f"ns{i % 3}", f"web-{i}", refs[i % 6]) for i in range(12)], taken_at=taken_at)
    results = {r: make_result(r, make_feature(f"lib{j}", "1.0", *[make_vuln(f"CVE-{j}-{k}", ("High", "Low")[k % 2],
                                                                           fixed_by="2" if k % 3 else "")
                                                                 for k in range(n)]),
                              make_feature("openssl", "3.0", make_vuln("CVE-9", "Medium")))
               for j, r in enumerate(refs)}
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=load_previous(out, current=snap),
                        settings=make_settings())
    write_reports(ctx, out)
"""


def test_the_same_runs_give_the_same_bytes_in_every_process(tmp_path):
    """Two runs, the second comparing with the first, in processes whose string hashes differ (sets
    and dicts of strings iterate in another order): every file is the same, byte for byte."""
    root = Path(__file__).resolve().parents[3]
    outs = []
    for seed in ("1", "2", "3"):
        out = tmp_path / seed
        out.mkdir()
        subprocess.run([sys.executable, "-c", _TWO_RUNS, str(out)], check=True, cwd=root,
                       env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)})
        outs.append(out)
    names = ["report.html", "report.xlsx", "summary.json", "summary.previous.json"]
    for name in names:
        assert len({(out / name).read_bytes() for out in outs}) == 1, name
