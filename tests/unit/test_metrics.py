"""Metrics: bounded labels from the one report context; the textfile as node-exporter reads it."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.exposition import generate_latest

from job import metrics
from job.cli import cli
from job.metrics import RunFacts, bounded_hosts, collect, failing_runs
from job.model import ScanState
from job.report import build_context
from job.log import QuietLog
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot, make_vuln
from tests.planted import peak_while, plant
from tests.triage_run import triage_context
from tests.unit.test_faults_input import DEMO

RUN = RunFacts(started=1000.0, finished=1100.0, completed=True, exit_code=0,
               stages=(("snapshot", 1.5), ("scan", 60.0)), peak_rss_bytes=123 << 20)


def samples(registry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_figures_per_namespace_severity_and_triage_with_no_unbounded_label(tmp_path):
    ctx, _out = triage_context(tmp_path)
    got = samples(collect(ctx, RUN))
    assert got[("imvjob_vulnerabilities", (("namespace", "shop"), ("severity", "Critical")))] == 1
    assert got[("imvjob_vulnerabilities_fixable", (("namespace", "shop"),))] == 4
    assert got[("imvjob_cluster_vulnerabilities", (("severity", "Low"),))] == 0
    # glibc's CVE-2023-4911 is in KEV, due April 20th: overdue on May 4th; openssl's Critical one,
    # first seen April 1st with 7 days to fix, is 26 days overdue.
    overdue = {labels: v for (name, labels), v in got.items() if name == "imvjob_findings_overdue"}
    assert overdue[(("exploited", "true"), ("fixable", "true"), ("namespace", "shop"), ("severity", "High"))] == 1
    assert got[("imvjob_findings_overdue_days_max", (("namespace", "shop"),))] == 26
    assert got[("imvjob_findings_exploited", (("namespace", "payments"),))] == 1
    assert got[("imvjob_last_success_timestamp_seconds", ())] == 1100.0
    assert got[("imvjob_stage_duration_seconds", (("stage", "scan"),))] == 60.0
    assert got[("imvjob_peak_memory_bytes", ())] == 123 << 20
    assert got[("imvjob_registry_manifests", (("host", "quay.io"), ("state", "scanned")))] == 3
    assert got[("imvjob_exceptions_expired", ())] == 0
    allowed = {"namespace", "severity", "exploited", "fixable", "host", "state", "reason", "stage", "action"}
    assert {k for _name, labels in got for k, _v in labels} <= allowed


def test_a_run_that_failed_says_when_it_ran_but_not_that_it_succeeded():
    got = samples(collect(None, RunFacts(1000.0, 1005.0, False, 1, (), 0)))
    assert got == {("imvjob_last_run_timestamp_seconds", ()): 1005.0, ("imvjob_run_exit_code", ()): 1}


def test_unscanned_images_by_reason_and_registry_errors_by_bounded_host():
    refs = [make_ref(f"team/app{i}", host=f"reg{i}.example") for i in range(5)]
    results = {r: make_result(r, make_feature("openssl", "1", make_vuln())) for r in refs[:2]}
    results[refs[2]] = make_result(refs[2], state=ScanState.UNREACHABLE, detail="connection refused")
    results[refs[3]] = make_result(refs[3], state=ScanState.QUEUED, detail="queued")
    results[refs[4]] = make_result(refs[4], state=ScanState.UNREACHABLE, detail="connection refused")
    snap = make_snapshot([make_pod("ns", f"p{i}-a-b", r) for i, r in enumerate(refs)])
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    got = samples(collect(ctx, RUN, max_hosts=2, failing={"reg2.example": 2}))
    assert got[("imvjob_images_unscanned", (("reason", "unreachable"),))] == 2
    assert got[("imvjob_images_unscanned", (("reason", "queued"),))] == 1
    assert got[("imvjob_images_scanned", ())] == 2
    # The hosts with errors keep their name; the other three are one "other".
    errors = {labels: v for (name, labels), v in got.items() if name == "imvjob_registry_errors"}
    assert errors == {(("host", "reg2.example"),): 1, (("host", "reg4.example"),): 1, (("host", "other"),): 0}
    assert got[("imvjob_registry_failing_runs", (("host", "reg2.example"),))] == 2


def test_bounded_hosts_and_consecutive_failing_runs():
    labels = bounded_hosts({"b": 1}, {"a": 9, "b": 1, "c": 5}, limit=2)
    assert labels == {"b": "b", "a": "a", "c": "other"}
    assert failing_runs({"a": 1, "gone": 4}, {"a": 2, "b": 1, "c": 0}) == {"a": 2, "b": 1, "c": 0}


def test_the_textfile_is_written_by_completed_runs_only_and_parses(tmp_path):
    path = tmp_path / "imvjob.prom"
    ctx, out = triage_context(tmp_path)
    settings = make_settings(metrics_textfile=str(path), output=str(out))
    assert metrics.publish(ctx, settings, QuietLog(), completed=True, exit_code=0, out_dir=out) == 0
    text = path.read_text()
    assert "imvjob_last_success_timestamp_seconds" in text and "CVE-" not in text and "sha256" not in text
    assert list(text_string_to_metric_families(text))
    before = path.read_text()
    assert metrics.publish(None, settings, QuietLog(), completed=False, exit_code=1, out_dir=out) == 0
    assert path.read_text() == before  # the last success is not lost by a failed run
    assert (out / metrics.STATE_FILE).exists()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("planted", ["fifo", "huge"])
def test_a_fifo_or_huge_state_file_is_no_state_not_a_wait(tmp_path, planted):
    """The state file is read by every run that publishes metrics: one that never ends counts as none."""
    ctx, out = triage_context(tmp_path)
    state = out / metrics.STATE_FILE
    plant(state, planted)
    settings = make_settings(metrics_textfile=str(tmp_path / "x.prom"), output=str(out))
    failed, peak = peak_while(lambda: metrics.publish(ctx, settings, QuietLog(), completed=True, exit_code=0,
                                                      out_dir=out))
    assert failed == 0
    assert peak < 64 << 20, f"reading held {peak >> 20} MiB"
    assert state.is_file() and state.stat().st_size < 1 << 20  # this run's, in its place


@pytest.mark.parametrize("runs", ['{"quay.io": 1e400}', '{"quay.io": NaN}', '{"quay.io": "x"}', '[1]', '7'])
def test_a_damaged_state_file_is_no_state_not_a_crash(tmp_path, runs):
    """Every run reads it before it rewrites it: one that crashed the run would crash every run after."""
    ctx, out = triage_context(tmp_path)
    (out / metrics.STATE_FILE).write_text('{"registry_failing_runs": %s}' % runs)
    settings = make_settings(metrics_textfile=str(tmp_path / "x.prom"), output=str(out))
    assert metrics.publish(ctx, settings, QuietLog(), completed=True, exit_code=0, out_dir=out) == 0
    assert metrics.read_state(out) == json.loads((out / metrics.STATE_FILE).read_text())["registry_failing_runs"]


def test_a_frequent_run_writes_its_own_textfile_beside_the_full_runs(tmp_path):
    path, out = tmp_path / "imvjob.prom", tmp_path / "out"
    args = ["run", *DEMO, "-o", str(out), "--metrics-textfile", str(path)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    full = path.read_bytes()
    frequent = tmp_path / "imvjob.frequent.prom"
    assert not frequent.exists()
    result = CliRunner().invoke(cli, [*args, "--no-reports"])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == full  # the full run's figures, as it wrote them
    families = {f.name: f for f in text_string_to_metric_families(frequent.read_text())}
    assert {"imvjob_frequent_last_success_timestamp_seconds", "imvjob_frequent_run_exit_code",
            "imvjob_frequent_objects"} <= set(families)
    assert not any(name.startswith("imvjob_") and not name.startswith("imvjob_frequent_") for name in families)
    created = int(re.search(r"created=(\d+)", result.output)[1])  # offline, the objects are written anew
    assert created and {s.labels["action"]: s.value for s in families["imvjob_frequent_objects"].samples}[
        "created"] == created
    before = frequent.read_bytes()
    failed = CliRunner().invoke(cli, ["run", "--pods", str(tmp_path / "missing.json"), "-o", str(out),
                                      "--metrics-textfile", str(path), "--no-reports"])
    assert failed.exit_code == 1
    assert frequent.read_bytes() == before  # its last success is not lost by a failed run


def test_a_textfile_that_cannot_be_written_is_reported(tmp_path):
    ctx, out = triage_context(tmp_path)
    settings = make_settings(metrics_textfile=str(tmp_path / "missing" / "x.prom"))
    assert metrics.publish(ctx, settings, QuietLog(), completed=True, exit_code=0, out_dir=out) == 1


def test_a_bearer_token_from_a_file_goes_to_the_pushgateway(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_PUT(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Authorization"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    ctx, out = triage_context(tmp_path)
    settings = make_settings(pushgateway_url=f"http://127.0.0.1:{server.server_address[1]}",
                             pushgateway_token_file=str(token))
    try:
        assert metrics.publish(ctx, settings, QuietLog(), completed=True, exit_code=0, out_dir=out) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("/metrics/job/imvjob/cluster/prod-eu", "Bearer tok-123")]


def test_a_check_run_neither_pushes_nor_writes(tmp_path):
    ctx, out = triage_context(tmp_path)
    settings = make_settings(metrics_textfile=str(tmp_path / "x.prom"), pushgateway_url="http://127.0.0.1:1",
                             check=True)
    assert metrics.publish(ctx, settings, QuietLog(), completed=True, exit_code=0, out_dir=out) == 0
    assert not (tmp_path / "x.prom").exists() and not (out / metrics.STATE_FILE).exists()
