"""The command line: settings from flags, environment and config file; errors as one line and a status."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from job.cli import cli
from job.settings import SETTING_FIELDS

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan")]


def invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env or {}, catch_exceptions=False)


def test_every_setting_is_a_flag_with_its_environment_variable() -> None:
    text = invoke(["run", "--help"]).output
    for f in SETTING_FIELDS:
        assert "--" + f.name.replace("_", "-") in text
        assert "IMVJOB_" + f.name.upper() in text


def test_offline_run_writes_everything_and_exits_0(tmp_path: Path) -> None:
    result = invoke(["run", *DEMO, "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "imvjob: ok=" in result.output and "failed=0" in result.output
    for name in ("imagemanifestvulns.yaml", "report.html", "report.xlsx", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["schemaVersion"]


def test_precedence_flag_over_env_over_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"cluster_name: from-file\noutput: {tmp_path / 'file-out'}\n")
    env = {"IMVJOB_CONFIG": str(config), "IMVJOB_CLUSTER_NAME": "from-env"}
    assert invoke(["run", *DEMO], env).exit_code == 0
    summary = json.loads((tmp_path / "file-out" / "summary.json").read_text())
    assert "from-env" in json.dumps(summary)
    assert invoke(["run", *DEMO, "--cluster-name", "from-flag"], env).exit_code == 0
    assert "from-flag" in (tmp_path / "file-out" / "summary.json").read_text()


@pytest.mark.parametrize("content, message", [
    ("smtp_password: hunter2\n", "is a secret"),
    ("no_such_setting: 1\n", "unknown setting"),
    ("[1, 2]\n", "must be a mapping"),
])
def test_bad_config_files_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content)
    result = invoke(["run", *DEMO, "--config", str(config), "--output", str(tmp_path)])
    assert result.exit_code == 1 and message in result.output  # a configuration error, not "completed with errors"
    assert not (tmp_path / "summary.json").exists()


def test_unwritable_output_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke(["run", *DEMO, "--output", str(blocker / "out")])
    assert result.exit_code == 1
    assert "cannot write" in result.output and "Traceback" not in result.output


def test_missing_pod_list_exits_1(tmp_path: Path) -> None:
    result = invoke(["run", "--pods", str(tmp_path / "nope.json"), "--output", str(tmp_path)])
    assert result.exit_code == 1 and "cannot read pod list" in result.output


def test_stages_replay_from_their_files(tmp_path: Path) -> None:
    out = ["--output", str(tmp_path)]
    assert invoke(["snapshot", *DEMO, *out]).exit_code == 0
    assert invoke(["scan", *DEMO, *out]).exit_code == 0
    assert invoke(["apply", *DEMO, *out]).exit_code == 0
    assert invoke(["report", *DEMO, *out]).exit_code == 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "imagemanifestvulns.yaml").is_file()
    result = invoke(["report", "--output", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "run the stage that writes it first" in result.output


def test_report_and_notify_replay_a_whole_run(tmp_path: Path) -> None:
    """As the README shows: `imvjob run -o OUT`, then `imvjob report -o OUT` and `imvjob notify -o OUT`."""
    out = ["--output", str(tmp_path)]
    assert invoke(["run", *DEMO, *out]).exit_code == 0
    first = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "report.html").unlink()
    result = invoke(["report", *out])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "summary.json").read_text())
    assert (tmp_path / "report.html").is_file() and again["totals"] == first["totals"]
    result = invoke(["notify", *out, "--check", "--mail-to", "sec@example.com"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mail" / "sec@example.com.eml").is_file()
    # Compactly: the run's stage files are compressed.
    assert {p.name for p in tmp_path.glob("*.json.gz")} == {"snapshot.json.gz", "scan.json.gz"}


def test_a_frequent_run_applies_and_leaves_reports_and_mail_to_the_full_runs(tmp_path: Path) -> None:
    out = ["--output", str(tmp_path)]
    assert invoke(["run", *DEMO, *out]).exit_code == 0
    summary = (tmp_path / "summary.json").read_bytes()
    (tmp_path / "report.html").unlink()
    (tmp_path / "imagemanifestvulns.yaml").unlink()
    result = invoke(["run", *DEMO, *out, "--check", "--mail-to", "sec@example.com"],
                    {"IMVJOB_NO_REPORTS": "true"})
    assert result.exit_code == 0 and "imvjob: ok=" in result.output, result.output
    assert (tmp_path / "imagemanifestvulns.yaml").stat().st_size > 0  # applied
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "mail").exists()
    assert (tmp_path / "summary.json").read_bytes() == summary  # what the next full run compares with
    # The stage files are there, for `imvjob report` to render from them.
    assert invoke(["report", *out]).exit_code == 0 and (tmp_path / "report.html").is_file()
