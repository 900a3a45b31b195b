"""Each owner's mail opens with their overdue findings and lists their workloads in triage order."""
from __future__ import annotations

import email
import email.policy
import io

import openpyxl

from job.log import RunLog
from job.notify import notify
from tests.factories import make_settings
from tests.triage_run import triage_context


def _send(ctx, tmp_path, port):
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                             mail_to=("sec@example.com",), mail_from="imvjob@example.com")
    return notify(ctx, settings, RunLog(stream=io.StringIO(), progress="never"), out_dir=tmp_path)


def _received(server):
    return {tuple(r.rcpt_tos): email.message_from_bytes(r.data, policy=email.policy.default)
            for r in server.recorder.messages}


def test_an_owner_reads_their_overdue_findings_first_and_a_bad_feed_is_said(smtp_plain, tmp_path):
    ctx, _out = triage_context(tmp_path, kev_text='{"vulnerabilities": "not a list"}',
                               epss_date="2026-05-03T00:00:00+0000")
    assert _send(ctx, tmp_path, smtp_plain.port).failed == 0
    got = _received(smtp_plain)

    shop = got[("shop-team@example.com",)]
    text = shop.get_body(("plain",)).get_content()
    assert "NOTE: KEV feed malformed: not a KEV catalogue" in text
    overdue = text[text.index("OVERDUE: 3 findings"):text.index("WHAT TO DO")]
    lines = [line for line in overdue.splitlines() if line.startswith("- due")]
    # Without KEV, glibc's deadline is the High policy's (May 1), not KEV's April 20; on the same
    # day, the higher EPSS score first.
    assert lines == [
        "- due 2026-04-08 (26 days overdue) [Critical] shop Deployment/web: CVE-2024-0727 in openssl",
        "- due 2026-05-01 (3 days overdue) [High] shop Deployment/web: CVE-2023-38545 in curl (EPSS 25%)",
        "- due 2026-05-01 (3 days overdue) [High] shop Deployment/api: CVE-2023-4911 in glibc"]
    assert text.index("OVERDUE") < text.index("Vulnerabilities:")
    html = shop.get_body(("html",)).get_content()
    assert html.index("Overdue: 3 findings") < html.index("What to do")
    assert "payments" not in text  # not theirs
    assert "2 of 3 are in the base image: rebuild from a newer base" in text
    assert "update openssl 3.0.1 -> 3.0.13, fixes 2" in text
    assert "rebuild quay.io/shop/web:latest (containers c0) https://quay.io/repository/shop/web/manifest/" in text

    payments = got[("payments@example.com",)].get_body(("plain",)).get_content()
    assert "OVERDUE" not in payments and "fix first: CVE-2021-44228 (EPSS 94%), due 2026-08-02" in payments


def test_the_full_mail_ranks_exploited_workloads_first(smtp_plain, tmp_path):
    ctx, _out = triage_context(tmp_path)
    _send(ctx, tmp_path, smtp_plain.port)
    sec = _received(smtp_plain)[("sec@example.com",)]
    text = sec.get_body(("plain",)).get_content()
    todo = text[text.index("WHAT TO DO"):]
    assert todo.index("payments StatefulSet/db") < todo.index("shop Deployment/api") < todo.index("shop Deployment/web")
    assert "fix first: CVE-2021-44228 (KEV, ransomware, EPSS 94%), due 2026-05-30" in todo
    part, = [p for p in sec.iter_attachments() if p.get_filename().endswith(".xlsx")]
    wb = openpyxl.load_workbook(io.BytesIO(part.get_content()))
    assert [r[7] for r in wb["Overdue"].iter_rows(min_row=2, values_only=True)] == \
        ["CVE-2024-0727", "CVE-2023-4911", "CVE-2023-38545"]
