"""The shipped alerting rules: valid for promtool, the PrometheusRule and the plain file alike, on
the series the job really pushes, firing when they should (promtool test rules)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from job.metrics import RunFacts, collect, collect_frequent
from job.model import ApplyOutcome
from tests.triage_run import triage_context

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "imvjob.rules.yml"
PROMETHEUS_RULE = REPO / "deploy" / "prometheus" / "prometheus-rule.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (Debian package prometheus; tests/system-deps.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def check(promtool: str, path: Path) -> None:
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_both_files_pass_promtool_and_hold_the_same_groups(promtool, tmp_path):
    check(promtool, RULES)
    manifest = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(manifest["spec"]))
    check(promtool, spec)
    assert manifest["spec"] == yaml.safe_load(RULES.read_text())


def test_no_successful_run_means_twice_the_cronjob_schedule():
    cronjob = next(d for d in yaml.safe_load_all((REPO / "cronjob.yaml").read_text()) if d and d["kind"] == "CronJob")
    minute, hour, *_ = cronjob["spec"]["schedule"].split()
    assert hour.startswith("*/") and minute.isdigit()
    rule = _rule("ImvjobNoSuccessfulRun")
    assert rule["expr"].endswith(f"> {2 * int(hour[2:]) * 3600}")


def test_the_rules_read_series_the_job_pushes(tmp_path):
    ctx, _ = triage_context(tmp_path)
    run = RunFacts(0.0, 1.0, True, 0, (("scan", 1.0),), 1)
    registry = collect(ctx, run, failing={"quay.io": 2})
    pushed = {m.name for m in registry.collect()} | {m.name for m in collect_frequent(run, ApplyOutcome()).collect()}
    used = {name for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]
            for name in _names(r["expr"])}
    assert used and used <= pushed, used - pushed


def test_each_alert_fires_when_it_should_and_not_before(promtool, tmp_path):
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            # A sample a minute, as a scraped Pushgateway gives (a series is stale 5 minutes after its last).
            "interval": "1m",
            "input_series": [
                # prod's last success stays at time 0; staging succeeds every hour.
                {"series": 'imvjob_last_success_timestamp_seconds{cluster="prod"}', "values": "0x800"},
                {"series": 'imvjob_last_success_timestamp_seconds{cluster="staging"}', "values": "0+60x800"},
                {"series": 'imvjob_last_run_timestamp_seconds{cluster="prod"}', "values": "0+60x800"},
                {"series": 'imvjob_findings_overdue{cluster="prod",namespace="shop",severity="High",'
                           'exploited="true",fixable="false"}', "values": "0 2"},
                {"series": 'imvjob_findings_overdue{cluster="prod",namespace="pay",severity="Critical",'
                           'exploited="false",fixable="true"}', "values": "1 1"},
                {"series": 'imvjob_findings_overdue{cluster="prod",namespace="pay",severity="Critical",'
                           'exploited="false",fixable="false"}', "values": "5 5"},
                {"series": 'imvjob_registry_failing_runs{cluster="prod",host="quay.io"}', "values": "1 2"},
                {"series": 'imvjob_registry_failing_runs{cluster="prod",host="harbor.corp"}', "values": "0 0"},
                # prod's frequent runs stop succeeding at 60 minutes; staging's go on.
                {"series": 'imvjob_frequent_last_success_timestamp_seconds{cluster="prod"}',
                 "values": "0+60x60 3600x800"},
                {"series": 'imvjob_frequent_last_success_timestamp_seconds{cluster="staging"}', "values": "0+60x800"},
            ],
            "alert_rule_test": [
                {"eval_time": "11h", "alertname": "ImvjobNoSuccessfulRun", "exp_alerts": []},
                {"eval_time": "13h", "alertname": "ImvjobNoSuccessfulRun",
                 "exp_alerts": [_alert("ImvjobNoSuccessfulRun", cluster="prod", severity="warning",
                                       value="13h 0m 0s")]},
                {"eval_time": "0m", "alertname": "ImvjobOverdueExploitedFinding", "exp_alerts": []},
                {"eval_time": "1m", "alertname": "ImvjobOverdueExploitedFinding",
                 "exp_alerts": [_alert("ImvjobOverdueExploitedFinding", cluster="prod", namespace="shop",
                                       severity="critical", value="2")]},
                {"eval_time": "0m", "alertname": "ImvjobOverdueCriticalFixable",
                 "exp_alerts": [_alert("ImvjobOverdueCriticalFixable", cluster="prod", namespace="pay",
                                       severity="warning", value="1")]},
                {"eval_time": "0m", "alertname": "ImvjobRegistryErroring", "exp_alerts": []},
                {"eval_time": "1m", "alertname": "ImvjobRegistryErroring",
                 "exp_alerts": [_alert("ImvjobRegistryErroring", cluster="prod", host="quay.io",
                                       severity="warning", value="2")]},
                {"eval_time": "13h", "alertname": "ImvjobMetricsAbsent", "exp_alerts": []},
                {"eval_time": "115m", "alertname": "ImvjobFrequentRunsFailing", "exp_alerts": []},
                {"eval_time": "140m", "alertname": "ImvjobFrequentRunsFailing",
                 "exp_alerts": [_alert("ImvjobFrequentRunsFailing", cluster="prod", severity="warning",
                                       value="1h 20m 0s")]},
            ],
        }],
    }
    path = tmp_path / "tests.yml"
    path.write_text(json.dumps(tests))
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _rule(name: str) -> dict:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r["alert"] == name)


def _alert(name: str, *, value: str, **labels: str) -> dict:
    """An expected alert with its annotations rendered as Prometheus renders the rule's templates."""
    rule = _rule(name)
    annotations = {}
    for key, template in rule["annotations"].items():
        text = template.replace("{{ $value | humanizeDuration }}", value).replace("{{ $value }}", value)
        for label, label_value in labels.items():
            text = text.replace("{{ $labels.%s }}" % label, label_value)
        annotations[key] = text
    return {"exp_labels": labels, "exp_annotations": annotations}


def _names(expr: str) -> set[str]:
    return set(re.findall(r"\b(imvjob_[a-z_]+)\b", expr))
