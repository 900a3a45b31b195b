"""Accepted risk in the mail, over SMTP: an owner whose exception is about to end is told so, even
below the mail thresholds; accepted findings are counted and listed in the attached workbook."""
from __future__ import annotations

import email
import email.policy
import io

import openpyxl

from job.log import RunLog
from job.notify import notify
from tests.accepted_run import FORMULA, SCRIPT, accepted_context
from tests.factories import make_settings


def _send(ctx, tmp_path, port, **settings):
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                             mail_from="imvjob@example.com", **settings)
    return notify(ctx, settings, RunLog(stream=io.StringIO(), progress="never"), out_dir=tmp_path)


def _received(server):
    return {tuple(r.rcpt_tos): email.message_from_bytes(r.data, policy=email.policy.default)
            for r in server.recorder.messages}


def test_an_owner_is_mailed_about_an_exception_expiring_soon(smtp_plain, tmp_path):
    ctx, _out = accepted_context(tmp_path)
    assert _send(ctx, tmp_path, smtp_plain.port).failed == 0
    got = _received(smtp_plain)

    shop = got[("shop-team@example.com",)]
    assert shop["Subject"].endswith("; 1 accepted expiring soon")
    text = shop.get_body(("plain",)).get_content()
    soon = text[text.index("EXPIRING SOON: 1 accepted finding whose exception ends within 14 days"):]
    assert soon.splitlines()[1] == (f"- until 2026-05-12 (8 days left) [Critical] shop Deployment/web: CVE-2024-0727 "
                                    f"in openssl; accepted by {FORMULA}: {SCRIPT}")
    assert "EXPIRED EXCEPTIONS: 1" in text and "- ended 2026-05-01: CVE-2023-4911, accepted by alice@example.com" \
        in text
    assert "Accepted: 1 finding (exceptions and VEX)" in text
    html = shop.get_body(("html",)).get_content()
    assert "Expiring soon: 1 accepted finding" in html and "<script>" not in html
    assert "&lt;script&gt;document.title=" in html

    payments = got[("payments@example.com",)]
    ptext = payments.get_body(("plain",)).get_content()
    assert "EXPIRING SOON" not in ptext and "Accepted: 1 finding (exceptions and VEX)" in ptext
    part, = [p for p in payments.iter_attachments() if p.get_filename().endswith(".xlsx")]
    wb = openpyxl.load_workbook(io.BytesIO(part.get_content()))
    rows = list(wb["Accepted"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[7]) for r in rows] == [("accepted", "payments", "CVE-2021-44228")]  # only theirs


def test_expiring_soon_is_mailed_even_below_the_thresholds(smtp_plain, tmp_path):
    ctx, _out = accepted_context(tmp_path)
    outcome = _send(ctx, tmp_path, smtp_plain.port, mail_min_severity="Defcon1")
    assert (outcome.sent, outcome.below_threshold) == (1, 1)
    assert list(_received(smtp_plain)) == [("shop-team@example.com",)]
