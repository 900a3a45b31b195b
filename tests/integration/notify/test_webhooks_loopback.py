"""Chat messages delivered to receivers on loopback: per owner and global, Slack and Teams shapes as
documented, the generic JSON signed; nothing when nothing changed; 429 with Retry-After, 5xx, a
receiver that hangs and a refused webhook never hold the others; URLs never in logs or outputs."""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from job.cli import cli
from job.log import RunLog
from job.notify import webhooks
from job.notify.chat import SCHEMA
from tests.factories import make_settings
from tests.planted import peak_while, plant
from tests.triage_run import triage_context
from webhook_receivers import check_slack, check_teams, serve

REPO = Path(__file__).resolve().parents[3]
REPORT = "https://reports.example.com/imvjob/report.html"
SECRET = "hmac-shared-secret"


@pytest.fixture()
def receivers():
    r = serve()
    yield r
    r.close()


def secret_folder(tmp: Path, receivers, **urls: str) -> Path:
    folder = tmp / "webhook-secret"
    folder.mkdir()
    for key, url in urls.items():
        (folder / key).write_text(url.format(base=receivers.base) + "\n")
    return folder


def settings_for(folder: Path, **more):
    values = {"webhook_urls_file": str(folder), "webhook_global": ("security",), "report_url": REPORT,
              "webhook_allowed_host": ("127.0.0.1:*",), "webhook_deadline": 5.0}
    return make_settings(**{**values, **more})


def routed_context(tmp: Path):
    ctx, out = triage_context(tmp)
    namespaces = ctx.inputs.snapshot.namespaces
    namespaces["shop"].annotations["imvjob/webhook"] = "shop-chat"
    namespaces["payments"].annotations["imvjob/webhook"] = "pay-teams, missing-key"
    return ctx, out


def test_each_owner_and_the_security_team_get_their_share_once(tmp_path, receivers, monkeypatch):
    monkeypatch.setenv("IMVJOB_WEBHOOK_HMAC_SECRET", SECRET)
    folder = secret_folder(tmp_path, receivers, **{"shop-chat": "slack:{base}/services/T0/B0/shopTOKEN",
                                                   "pay-teams": "teams:{base}/workflows/payTOKEN",
                                                   "security": "json:{base}/hook/secTOKEN"})
    ctx, out = routed_context(tmp_path)
    stream = io.StringIO()
    outcome = webhooks.deliver(ctx, settings_for(folder), RunLog(stream=stream), out_dir=out)
    assert (outcome.sent, outcome.failed) == (3, 0)

    (slack,) = receivers.at("/services/T0/B0/shopTOKEN")
    check_slack(slack.json)
    text = json.dumps(slack.json)
    assert "shop/" in text and "payments" not in text and "CVE-2023-4911" in text
    assert REPORT in slack.json["blocks"][-1]["elements"][0]["text"]

    (teams,) = receivers.at("/workflows/payTOKEN")
    check_teams(teams.json, teams.body)
    card = json.dumps(teams.json)
    assert "CVE-2021-44228" in card and "shop" not in card

    (generic,) = receivers.at("/hook/secTOKEN")
    doc = generic.json
    assert doc["schema"] == SCHEMA and doc["namespaces"] is None and doc["reportUrl"] == REPORT
    assert {i["namespace"] for i in doc["items"]} >= {"shop", "payments"}
    assert doc["counts"]["exploited"] >= 2 and doc["counts"]["overdue"] >= 1
    stamp = generic.headers["X-Imvjob-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + generic.body, hashlib.sha256).hexdigest()
    assert generic.headers["X-Imvjob-Signature"] == f"sha256={expected}"

    log = stream.getvalue()
    assert "'missing-key' (namespace payments) is not in the webhook Secret" in log
    assert "TOKEN" not in log and receivers.base not in log

    # A second run that finds the same things sends nothing.
    again = webhooks.deliver(ctx, settings_for(folder), RunLog(stream=io.StringIO()), out_dir=out)
    assert (again.sent, again.unchanged, len(receivers.received)) == (0, 3, 3)
    assert "TOKEN" not in (out / webhooks.STATE_FILE).read_text()


def test_429_is_retried_after_retry_after_and_5xx_with_backoff(tmp_path, receivers):
    receivers.script["/hook/secTOKEN"] = [(429, {"Retry-After": "1"}, 0.0), (503, {}, 0.0)]
    folder = secret_folder(tmp_path, receivers, security="json:{base}/hook/secTOKEN")
    ctx, out = routed_context(tmp_path)
    outcome = webhooks.deliver(ctx, settings_for(folder), RunLog(stream=io.StringIO()), out_dir=out)
    assert (outcome.sent, outcome.failed) == (1, 0)
    first, second, third = receivers.at("/hook/secTOKEN")
    assert second.at - first.at >= 0.95  # Retry-After: 1
    assert third.body == first.body


def test_a_hanging_a_refusing_and_a_forbidden_webhook_never_hold_the_others(tmp_path, receivers):
    receivers.script["/hang/secTOKEN"] = [(200, {}, 60.0)]
    receivers.script["/services/T0/B0/shopTOKEN"] = [(404, {}, 0.0)]
    folder = secret_folder(tmp_path, receivers, **{"security": "json:{base}/hang/secTOKEN",
                                                   "shop-chat": "slack:{base}/services/T0/B0/shopTOKEN",
                                                   "pay-teams": "teams:{base}/workflows/payTOKEN"})
    (folder / "evil").write_text("json:https://elsewhere.example/hook\n")
    ctx, out = routed_context(tmp_path)
    ctx.inputs.snapshot.namespaces["shop"].annotations["imvjob/webhook"] = "shop-chat, evil"
    stream = io.StringIO()
    started = time.monotonic()
    outcome = webhooks.deliver(ctx, settings_for(folder, webhook_deadline=2.0), RunLog(stream=stream), out_dir=out)
    took = time.monotonic() - started
    assert (outcome.sent, outcome.failed) == (1, 3)
    assert took < 10
    assert len(receivers.at("/workflows/payTOKEN")) == 1
    assert len(receivers.at("/services/T0/B0/shopTOKEN")) == 1  # a 404 is not retried
    log = stream.getvalue()
    assert "webhook security (json) failed: " in log and "--webhook-deadline" in log
    assert "webhook shop-chat (slack) failed: HTTP 404" in log
    assert "webhook evil (json) not sent: its host is not in --webhook-allowed-host" in log
    assert "TOKEN" not in log and "elsewhere.example" not in log
    # What failed is tried again next run; what was delivered is not sent again.
    receivers.script.clear()
    receivers.released.set()
    again = webhooks.deliver(ctx, settings_for(folder), RunLog(stream=io.StringIO()), out_dir=out)
    assert (again.sent, again.unchanged) == (2, 1)


def test_a_run_posts_to_the_global_webhook_and_no_url_reaches_any_output(tmp_path, receivers):
    url = f"{receivers.base}/hook/secTOKEN-in-url"
    args = ["run", "--pods", str(REPO / "demo" / "pods.json"), "--secscan-dir", str(REPO / "demo" / "secscan"),
            "--output", str(tmp_path), "--webhook-global", "security", "--webhook-allowed-host", "127.0.0.1:*",
            "--report-url", REPORT]
    env = {"IMVJOB_WEBHOOK_URLS": json.dumps({"security": "json:" + url})}
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (posted,) = receivers.at("/hook/secTOKEN-in-url")
    assert posted.json["counts"]["coverage"] > 0  # the demo's unscanned images
    assert "posted" in result.output and "TOKEN" not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"TOKEN" not in path.read_bytes(), path

    # --check writes what would be posted instead of posting it.
    checked = CliRunner().invoke(cli, [*args, "--check", "--output", str(tmp_path / "check")], env=env,
                                 catch_exceptions=False)
    assert checked.exit_code == 0, checked.output
    assert json.loads((tmp_path / "check" / "webhooks" / "security.json").read_text())["schema"] == SCHEMA
    assert len(receivers.received) == 1


def test_an_https_webhook_with_a_private_ca_is_trusted_through_extra_certs(tmp_path, server_tls, ca_file):
    receivers = serve(tls=server_tls)
    try:
        folder = secret_folder(tmp_path, receivers, security="json:{base}/hook/secTOKEN")
        ctx, out = routed_context(tmp_path)
        stream = io.StringIO()
        untrusted = webhooks.deliver(ctx, settings_for(folder, webhook_allowed_host=()), RunLog(stream=stream),
                                     out_dir=out)
        assert (untrusted.sent, untrusted.failed) == (0, 1) and "CERTIFICATE_VERIFY_FAILED" in stream.getvalue()
        trusted = webhooks.deliver(ctx, settings_for(folder, webhook_allowed_host=(), extra_certs=str(ca_file)),
                                   RunLog(stream=io.StringIO()), out_dir=out)
        assert (trusted.sent, trusted.failed) == (1, 0)
        assert receivers.at("/hook/secTOKEN")[-1].json["schema"] == SCHEMA
    finally:
        receivers.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("planted", ["fifo", "huge"])
def test_a_fifo_or_huge_state_file_is_no_state_not_a_wait(tmp_path, receivers, planted):
    """The state file is read by every run: one that never ends counts as none (all is sent again)."""
    folder = secret_folder(tmp_path, receivers, security="json:{base}/hook/secTOKEN")
    ctx, out = routed_context(tmp_path)
    state = out / webhooks.STATE_FILE
    plant(state, planted)
    outcome, peak = peak_while(lambda: webhooks.deliver(ctx, settings_for(folder), RunLog(stream=io.StringIO()),
                                                        out_dir=out))
    assert (outcome.sent, outcome.failed) == (1, 0)
    assert peak < 64 << 20, f"reading held {peak >> 20} MiB"
    assert state.is_file() and state.stat().st_size < 1 << 20  # this run's, in its place
