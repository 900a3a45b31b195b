"""Counts that add up: one unit per figure, named, and every output saying the same."""
from __future__ import annotations

import email
import email.policy
import io
import re

from job.log import RunLog
from job.notify import notify
from job.report import build_context
from job.report.html import render_html
from job.report.summary import summary_doc
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot, make_vuln

BASE = make_ref("shop/base")
# One image, run by seven workloads.
PODS = [make_pod("shop", f"app{i}-1", BASE, workload=("Deployment", f"app{i}")) for i in range(7)]


def result(*extra):
    return {BASE: make_result(BASE, make_feature("openssl", "3.0.1", *(make_vuln(f"CVE-2024-{i:04d}", "High")
                                                                        for i in range(10)), *extra))}


def test_one_new_cve_in_one_image_is_high_plus_one_everywhere_and_seven_new_findings(tmp_path):
    week_before = build_context(snapshot=make_snapshot(PODS, taken_at="2026-04-27T06:00:00Z"), results=result(),
                                outcome=None, previous=None, settings=make_settings())
    ctx = build_context(snapshot=make_snapshot(PODS), results=result(make_vuln("CVE-2024-9999", "High")),
                        outcome=None, previous=summary_doc(week_before), settings=make_settings())

    assert ctx.headline.endswith("since the last run: High +1")
    page = " ".join(re.sub(r"<[^>]+>", " ", render_html(ctx)).split())
    assert "Since last run +1 vulnerabilities: High +1 findings: 7 new · 0 resolved" in page
    doc = summary_doc(ctx)
    assert doc["changes"]["delta"]["High"] == 1 and doc["changes"]["newTotal"] == 7
    assert doc["totals"]["vulnerabilities"]["High"] == 11

    notify(ctx, make_settings(check=True, mail_to=("sec@example.com",)), RunLog(stream=io.StringIO(),
                                                                               progress="never"), out_dir=tmp_path)
    eml, = (tmp_path / "mail").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert re.search(r"High +11  \(\+1\)", text)  # not "(+7 new)": the same unit as the count
    assert "vulnerabilities High +1; findings (workload x vulnerability) 7 new, 0 resolved" in text
    assert msg["Subject"].endswith("7 new findings")
