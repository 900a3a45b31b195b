"""Mail through a real SMTP server on loopback: who gets what, over which security, and failures."""
from __future__ import annotations

import email
import email.policy
import io

import openpyxl
import pytest

from job.log import RunLog
from job.model import ScanState
from job.notify import notify, smtp
from job.report import build_context
from tests.factories import (CRLF_CLUSTER, make_feature, make_hostile_run, make_pod, make_ref, make_result,
                             make_settings, make_snapshot, make_vuln)
from smtp_servers import PASSWORD, USER, Recorder, free_port, serve

WEB, API, AGENT = make_ref("shop/web"), make_ref("pay/api"), make_ref("ops/agent")


def context(**settings):
    snap = make_snapshot(
        [make_pod("shop", "web-1", WEB), make_pod("pay", "api-1", API), make_pod("ops", "agent-1", AGENT)],
        owners={"shop": "shop@example.com", "pay": "pay@example.com, shop@example.com"})
    openssl = make_feature("openssl", "3.0.1", make_vuln("CVE-1", "Critical", fixed_by="3.0.13"))
    results = {WEB: make_result(WEB, openssl),
               API: make_result(API, make_feature("zlib", "1.2", make_vuln("CVE-2", "High"))),
               AGENT: make_result(AGENT, state=ScanState.QUEUED, detail="queued")}
    return build_context(snapshot=snap, results=results, outcome=None, previous=None,
                         settings=make_settings(**settings))


def send(ctx, tmp_path, **settings):
    stream = io.StringIO()
    outcome = notify(ctx, make_settings(**settings), RunLog(stream=stream, progress="never"), out_dir=tmp_path)
    return outcome, stream.getvalue()


def parsed(received):
    return email.message_from_bytes(received.data, policy=email.policy.default)


def workbook_namespaces(msg) -> set[str]:
    part, = [p for p in msg.iter_attachments() if p.get_filename().endswith(".xlsx")]
    wb = openpyxl.load_workbook(io.BytesIO(part.get_content()))
    return {row[0] for row in wb["Workloads"].iter_rows(min_row=2, values_only=True)}


def test_the_right_people_get_the_right_namespaces(smtp_plain, tmp_path):
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                        smtp_security="none", mail_to=("sec@example.com",), mail_from="imvjob@example.com")
    assert (outcome.sent, outcome.failed) == (3, 0)
    got = {tuple(r.rcpt_tos): parsed(r) for r in smtp_plain.recorder.messages}
    assert sorted(got) == [("pay@example.com",), ("sec@example.com",), ("shop@example.com",)]
    assert workbook_namespaces(got[("sec@example.com",)]) == {"ops", "pay", "shop"}
    assert workbook_namespaces(got[("shop@example.com",)]) == {"pay", "shop"}
    assert workbook_namespaces(got[("pay@example.com",)]) == {"pay"}
    pay = got[("pay@example.com",)]
    assert pay["Subject"] == "[imvjob] prod-eu / pay: 1 High in 1 image"
    assert pay["To"] == "pay@example.com" and pay["From"] == "imvjob@example.com"
    assert pay.get_body(("plain",)).get_content().count("CVE-1") == 0  # shop's vulnerability is not theirs
    assert all(r.mail_from == "imvjob@example.com" for r in smtp_plain.recorder.messages)
    assert "mailed pay@example.com" in log


def test_starttls_with_login_password_from_a_file(smtp_starttls, ca_file, tmp_path):
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    outcome, _log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_starttls.port,
                         smtp_security="starttls", smtp_user=USER, smtp_password_file=str(secret),
                         extra_certs=str(ca_file), mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (3, 0)
    assert all(r.tls for r in smtp_starttls.recorder.messages)
    assert smtp_starttls.recorder.logins and all(ok for _m, ok in smtp_starttls.recorder.logins)


def test_starttls_with_the_password_from_the_environment(smtp_starttls, ca_file, tmp_path, monkeypatch):
    monkeypatch.setenv("IMVJOB_SMTP_PASSWORD", PASSWORD)
    outcome, _log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_starttls.port,
                         smtp_user=USER, extra_certs=str(ca_file), mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (3, 0)


def test_a_refused_login_fails_every_message_at_once(smtp_starttls, ca_file, tmp_path, monkeypatch):
    monkeypatch.setenv("IMVJOB_SMTP_PASSWORD", "wrong")
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_starttls.port,
                        smtp_user=USER, extra_certs=str(ca_file), mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    # One login, trying each mechanism the server offers once: a refused login is not retried.
    assert smtp_starttls.recorder.logins == [("PLAIN", False), ("LOGIN", False)]
    assert "login refused: 535" in log
    assert smtp_starttls.recorder.messages == []


def test_implicit_tls(smtp_tls, ca_file, tmp_path):
    outcome, _log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_tls.port, smtp_security="tls",
                         extra_certs=str(ca_file), mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (3, 0)
    assert len(smtp_tls.recorder.messages) == 3


def test_an_untrusted_certificate_is_refused(smtp_tls, tmp_path):
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_tls.port, smtp_security="tls",
                        mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    assert "TLS certificate of 127.0.0.1 not trusted" in log
    assert smtp_tls.recorder.messages == []


def test_no_mail_in_clear_when_starttls_is_not_offered(smtp_plain, tmp_path):
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                        smtp_security="starttls", mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    assert "does not offer STARTTLS" in log
    assert smtp_plain.recorder.messages == []


def test_a_password_is_never_sent_without_tls(smtp_plain, tmp_path, monkeypatch):
    monkeypatch.setenv("IMVJOB_SMTP_PASSWORD", PASSWORD)
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                        smtp_security="none", smtp_user=USER, mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    assert "refusing to send the SMTP password over a connection without TLS" in log


def test_a_temporary_refusal_is_retried(smtp_plain, tmp_path, monkeypatch):
    monkeypatch.setattr(smtp, "BACKOFF", (0.0, 0.0))
    smtp_plain.recorder.defer_data = 2
    outcome, _log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                         smtp_security="none", mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (3, 0)
    assert smtp_plain.recorder.data_attempts == 5


def test_retries_are_bounded(smtp_plain, tmp_path, monkeypatch):
    monkeypatch.setattr(smtp, "BACKOFF", (0.0, 0.0))
    smtp_plain.recorder.defer_data = 1000
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                        smtp_security="none", mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    assert smtp_plain.recorder.data_attempts == 3 * smtp.ATTEMPTS
    assert "gave up after 3 attempts: deferred: 451" in log


def test_a_refused_recipient_fails_only_their_message(smtp_plain, tmp_path):
    smtp_plain.recorder.refuse = {"pay@example.com"}
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                        smtp_security="none", mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (2, 1)
    assert sorted(r.rcpt_tos[0] for r in smtp_plain.recorder.messages) == ["sec@example.com", "shop@example.com"]
    assert "mail to pay@example.com failed: recipient refused: 550" in log


def test_an_unreachable_server_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(smtp, "BACKOFF", (0.0, 0.0))
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none",
                        smtp_timeout=5, mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    assert log.count("gave up after") == 1  # not three times three attempts


def test_a_message_too_big_for_the_server_goes_without_attachments(tmp_path):
    recorder = Recorder()
    controller = serve(recorder, data_size_limit=40_000)
    try:
        outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=controller.port,
                            smtp_security="none", mail_to=("sec@example.com",), attach_html=True)
    finally:
        controller.stop()
    assert (outcome.sent, outcome.failed) == (3, 0)
    sec = next(parsed(r) for r in recorder.messages if r.rcpt_tos == ["sec@example.com"])
    assert list(sec.iter_attachments()) == []
    assert "larger than the mail server accepts" in sec.get_body(("plain",)).get_content()
    assert "sent without attachments: the server takes at most 40,000 bytes" in log


def test_hostile_text_does_not_reach_headers_or_envelopes(smtp_plain, tmp_path):
    snap, results = make_hostile_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None,
                        settings=make_settings(cluster_name=CRLF_CLUSTER))
    outcome, _log = send(ctx, tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_plain.port, smtp_security="none",
                         mail_to=("sec@example.com",), cluster_name=CRLF_CLUSTER)
    assert outcome.failed == 0
    assert sorted(r.rcpt_tos[0] for r in smtp_plain.recorder.messages) == ["sec@example.com", "team@example.com"]
    for received in smtp_plain.recorder.messages:
        msg = parsed(received)
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        assert msg["Subject"].startswith("[imvjob] prod Bcc: evil@example.net")
        headers = received.data.split(b"\r\n\r\n", 1)[0]
        assert b"\nBcc:" not in headers
        html = msg.get_body(("html",)).get_content()
        assert "<b>web</b>" not in html and "&lt;b&gt;web&lt;/b&gt;" in html  # the workload name, as text


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_default_ports(security):
    assert smtp.Mailer(make_settings(smtp_host="mail.example", smtp_security=security)).port == \
        {"starttls": 587, "tls": 465}[security]


def test_extra_certs_as_a_folder_as_mounted_in_the_cluster(smtp_tls, ca_file, tmp_path):
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "ca.crt").write_bytes(ca_file.read_bytes())
    (folder / "README").write_text("not a certificate")
    outcome, _log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_tls.port, smtp_security="tls",
                         extra_certs=str(folder), mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (3, 0)


def test_unreadable_extra_certs_fail_the_mail_not_the_run(smtp_tls, tmp_path):
    outcome, log = send(context(), tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_tls.port, smtp_security="tls",
                        extra_certs=str(tmp_path / "missing.pem"), mail_to=("sec@example.com",))
    assert (outcome.sent, outcome.failed) == (0, 3)
    assert "no mail sent: --extra-certs" in log
