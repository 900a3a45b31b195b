"""`make demo`'s accepted-risk inputs: the page shows an accepted, an expiring and an expired entry."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

from click.testing import CliRunner

from job.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _inputs():
    spec = importlib.util.spec_from_file_location("triage_inputs", REPO / "demo" / "triage_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_inputs_accept_expire_and_warn(tmp_path):
    _inputs().write_accepted(tmp_path, dt.datetime.now(dt.timezone.utc).date())
    result = CliRunner().invoke(cli, [
        "run", "--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan"),
        "--output", str(tmp_path / "out"), "--exceptions", str(tmp_path / "exceptions.yaml"),
        "--vex", str(tmp_path / "vex")], env={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    acc = json.loads((tmp_path / "out" / "summary.json").read_text())["accepted"]
    assert {f["entry"]["origin"] for f in acc["findings"]} == {"file", "vex"}
    assert acc["expiringSoon"] > 0 and acc["vexDocuments"] == 1
    assert [e["entry"]["vulnerability"] for e in acc["expired"]] == ["CVE-2024-28085"]
    assert acc["expired"][0]["findings"] > 0
    assert 'id="accepted"' in (tmp_path / "out" / "report.html").read_text()
