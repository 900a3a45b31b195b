"""Mail decisions and the messages themselves, written as .eml files with --check."""
from __future__ import annotations

import email
import email.policy
import io

import openpyxl
import pytest

from job.log import QuietLog
from job.model import ScanState
from job.notify import notify
from job.notify.message import subject
from job.notify.routing import Delivery, plan, skip_reason
from job.report import build_context
from tests.factories import (CRLF_CLUSTER, make_feature, make_hostile_run, make_pod, make_ref, make_result,
                             make_settings, make_snapshot, make_vuln)

WEB = make_ref("shop/web")
API = make_ref("pay/api")
AGENT = make_ref("ops/agent")


def context(previous=None, **settings):
    snap = make_snapshot(
        [make_pod("shop", "web-1", WEB), make_pod("pay", "api-1", API), make_pod("ops", "agent-1", AGENT)],
        owners={"shop": "shop@example.com, oncall@example.com", "pay": "pay@example.com, oncall@example.com",
                "ops": "sec@example.com"})
    openssl = make_feature("openssl", "3.0.1", make_vuln("CVE-1", "Critical", fixed_by="3.0.13"))
    results = {WEB: make_result(WEB, openssl),
               API: make_result(API, make_feature("zlib", "1.2", make_vuln("CVE-2", "Low"))),
               AGENT: make_result(AGENT, state=ScanState.QUEUED, detail="queued")}
    return build_context(snapshot=snap, results=results, outcome=None, previous=previous,
                         settings=make_settings(**settings))


def test_the_global_list_gets_everything_and_each_owner_all_of_their_namespaces_once():
    deliveries, problems = plan(context(), ("sec@example.com", "audit@example.com"))
    assert deliveries == [
        Delivery("sec@example.com", None), Delivery("audit@example.com", None),
        Delivery("oncall@example.com", ("pay", "shop")), Delivery("pay@example.com", ("pay",)),
        Delivery("shop@example.com", ("shop",)),
    ]  # sec@ owns ops but already gets everything
    assert problems == []


def test_invalid_global_addresses_are_reported_and_left_out():
    deliveries, problems = plan(context(), ("sec@example.com", "x@y.example\r\nBcc: evil@example.net", "nobody"))
    assert [d.recipient for d in deliveries if d.namespaces is None] == ["sec@example.com"]
    assert len(problems) == 2 and all("\r" not in p and "\n" not in p for p in problems)


@pytest.mark.parametrize("settings, shop, pay", [
    ({}, "", ""),
    ({"mail_min_severity": "High"}, "", "nothing at or above High"),
    ({"mail_min_severity": "Low"}, "", ""),
    # On a first run, everything found is new.
    ({"mail_only_new": True}, "", ""),
    ({"mail_only_new": True, "mail_min_severity": "Critical"}, "",
     "nothing new since the previous run at or above Critical"),
])
def test_thresholds(settings, shop, pay):
    ctx = context(**settings)
    s = make_settings(**settings)
    assert skip_reason(ctx.restrict(["shop"]), s) == shop
    assert skip_reason(ctx.restrict(["pay"]), s) == pay


def test_only_new_is_quiet_when_nothing_changed():
    from job.report.summary import summary_doc

    first = context()
    previous = summary_doc(first) | {"takenAt": "2026-05-03T06:00:00Z"}
    again = context(previous=previous)
    assert skip_reason(again, make_settings(mail_only_new=True)) == "nothing new since the previous run"


def test_subject_names_cluster_scope_and_headline_numbers_on_one_line():
    ctx = context()
    assert subject(ctx) == "[imvjob] prod-eu: 1 Critical, 1 Low in 2 images; 1 not scanned"
    assert subject(ctx.restrict(["pay", "shop"])) == "[imvjob] prod-eu / pay, shop: 1 Critical, 1 Low in 2 images"
    hostile = context(cluster_name=CRLF_CLUSTER)
    assert subject(hostile).startswith("[imvjob] prod Bcc: evil@example.net: ")


# --- the messages, through --check ----------------------------------------------------------------


def check_run(tmp_path, ctx, **settings):
    out = notify(ctx, make_settings(check=True, **settings), QuietLog(), out_dir=tmp_path)
    messages = {p.stem: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted((tmp_path / "mail").glob("*.eml"))}
    return out, messages


def attachment(msg, extension):
    part, = [p for p in msg.iter_attachments() if p.get_filename().endswith(extension)]
    return part


def namespaces_in_workbook(msg) -> set[str]:
    wb = openpyxl.load_workbook(io.BytesIO(attachment(msg, ".xlsx").get_content()))
    return {row[0] for row in wb["Workloads"].iter_rows(min_row=2, values_only=True)}


def test_check_writes_one_eml_per_recipient_with_only_their_namespaces(tmp_path):
    out, messages = check_run(tmp_path, context(), mail_to=("sec@example.com",))
    assert (out.sent, out.failed) == (4, 0)
    assert sorted(messages) == ["oncall@example.com", "pay@example.com", "sec@example.com", "shop@example.com"]
    for name, msg in messages.items():
        assert msg["To"] == name
        assert msg["From"] == "imvjob@localhost"
    assert namespaces_in_workbook(messages["sec@example.com"]) == {"ops", "pay", "shop"}
    assert namespaces_in_workbook(messages["oncall@example.com"]) == {"pay", "shop"}
    assert namespaces_in_workbook(messages["pay@example.com"]) == {"pay"}
    body = messages["pay@example.com"].get_body(("plain",)).get_content()
    assert "your namespaces: pay" in body and "CVE-1" not in body  # no what-to-do row leaks shop's CVE-1
    assert "shop" not in messages["pay@example.com"].get_body(("html",)).get_content()


def test_message_structure_is_text_and_html_alternatives_plus_the_workbook(tmp_path):
    _out, messages = check_run(tmp_path, context(), mail_to=("sec@example.com",), attach_html=True)
    msg = messages["sec@example.com"]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, *attached = msg.iter_parts()
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert [(p.get_content_type(), p.get_filename()) for p in attached] == [
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "imvjob-prod-eu-2026-05-04.xlsx"),
        ("text/html", "imvjob-prod-eu-2026-05-04.html")]
    html = msg.get_body(("html",)).get_content()
    assert "<script" not in html and "<svg" not in html and "<style" not in html  # mail-client safe
    assert "1 Critical" in html
    assert msg["Auto-Submitted"] == "auto-generated"


def test_hostile_text_never_reaches_a_header(tmp_path):
    snap, results = make_hostile_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None,
                        settings=make_settings(cluster_name=CRLF_CLUSTER))
    _out, messages = check_run(tmp_path, ctx, mail_to=("sec@example.com",), cluster_name=CRLF_CLUSTER)
    assert sorted(messages) == ["sec@example.com", "team@example.com"]  # not evil@, not the CR/LF item
    for msg in messages.values():
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    raw = (tmp_path / "mail" / "sec@example.com.eml").read_bytes()
    assert b"\nBcc:" not in raw and b"\nX-Injected:" not in raw


def test_check_replaces_the_eml_files_of_an_earlier_check(tmp_path):
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "gone@example.com.eml").write_text("old")
    (tmp_path / "mail" / "notes.txt").write_text("kept")
    _out, messages = check_run(tmp_path, context(), mail_to=("sec@example.com",))
    assert "gone@example.com" not in messages
    assert (tmp_path / "mail" / "notes.txt").exists()


def test_below_threshold_recipients_get_nothing(tmp_path):
    out, messages = check_run(tmp_path, context(), mail_min_severity="Critical")
    assert sorted(messages) == ["oncall@example.com", "shop@example.com"]
    assert out.below_threshold == 2  # pay@ (Low only) and sec@ (ops: nothing scanned)


def test_no_smtp_server_is_a_reason_not_an_error(tmp_path):
    out = notify(context(), make_settings(mail_to=("sec@example.com",)), QuietLog(), out_dir=tmp_path)
    assert (out.sent, out.failed, out.skipped) == (0, 0, "no SMTP server configured")
    assert not (tmp_path / "mail").exists()


def test_no_recipients_is_a_reason_not_an_error(tmp_path):
    ctx = build_context(snapshot=make_snapshot([make_pod("shop", "web-1", WEB)]),
                        results={WEB: make_result(WEB)}, outcome=None, previous=None, settings=make_settings())
    out = notify(ctx, make_settings(smtp_host="127.0.0.1"), QuietLog(), out_dir=tmp_path)
    assert (out.sent, out.failed) == (0, 0)
    assert out.skipped.startswith("no recipients")


def test_an_invalid_sender_fails_every_message(tmp_path):
    out = notify(context(), make_settings(check=True, mail_from="imvjob@x\r\nBcc: a@b.c", mail_to=("sec@example.com",)),
                 QuietLog(), out_dir=tmp_path)
    assert (out.sent, out.failed) == (0, 4)



def test_rejected_owner_addresses_are_logged_for_the_operator(tmp_path):
    import io

    from job.log import RunLog

    snap = make_snapshot([make_pod("shop", "web-1", WEB)], owners={"shop": "shop@example.com, team a"})
    ctx = build_context(snapshot=snap, results={WEB: make_result(WEB)}, outcome=None, previous=None,
                        settings=make_settings())
    stream = io.StringIO()
    notify(ctx, make_settings(check=True), RunLog(stream=stream, progress="never"), out_dir=tmp_path)
    assert "warning: namespace shop: imvjob/notify: 'team a' is not a mail address" in stream.getvalue()
