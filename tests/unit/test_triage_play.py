"""The play with feeds: a run without them works as before; a bad feed never stops it; a bad
policy is a configuration error; the stages rank alike."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from job.cli import cli
from tests.feed_files import write_epss, write_kev

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan")]


def invoke(args, env=None):
    return CliRunner().invoke(cli, args, env=env or {}, catch_exceptions=False)


def test_a_run_with_feeds_ranks_exploited_workloads_first_and_says_which_feeds_it_read(tmp_path):
    kev = write_kev(tmp_path / "kev.json", {"CVE-2023-4911": ("2023-12-12", False)}, released="2000-01-01T00:00:00Z")
    epss = tmp_path / "epss.csv"
    epss.write_text("garbage\n")
    result = invoke(["run", *DEMO, "--output", str(tmp_path / "out"), "--kev-feed", str(kev), "--epss-feed",
                     str(epss)])
    assert result.exit_code == 0, result.output  # a stale and a malformed feed are warnings
    assert "KEV feed" in result.output and "stale" in result.output and "EPSS feed" in result.output
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(f["name"], f["state"]) for f in doc["triage"]["feeds"]] == [("KEV", "stale"), ("EPSS", "malformed")]
    assert doc["totals"]["exploited"] > 0 and doc["totals"]["overdue"] == doc["totals"]["exploited"]
    assert doc["triage"]["sla"] == {"Critical": 7, "High": 30, "Medium": 90}


def test_a_run_without_feeds_says_so_and_works_as_before(tmp_path):
    result = invoke(["run", *DEMO, "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert [f["state"] for f in doc["triage"]["feeds"]] == ["not configured", "not configured"]
    assert doc["totals"]["overdue"] == 0


def test_a_policy_that_cannot_be_read_is_a_configuration_error(tmp_path):
    result = invoke(["run", *DEMO, "--output", str(tmp_path), "--sla", "Critical=soon"])
    assert result.exit_code == 1
    assert "--sla: 'Critical=soon' is not SEVERITY=DAYSd" in result.output
    assert not (tmp_path / "summary.json").exists()
