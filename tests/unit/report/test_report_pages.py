"""Owner pages of a large cluster as mails link to them (--report-url), and when a report is large."""
from __future__ import annotations

import email
from email.policy import default

from job.log import RunLog
from job.model import Namespace
from job.notify import notify
from job.report import build_context, write_reports
from job.report.html import LIMITS
from job.report.pages import report_links
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_vuln
from tests.report_factories import LATE_OWNER, large_run


def test_owner_mail_links_to_the_owners_page_where_the_report_is_served(tmp_path):
    out = tmp_path / "out"
    settings = make_settings(output=str(out), check=True, mail_to=("sec@example.com",),
                             report_url="https://reports.example/imvjob/report.html")
    snap, results = large_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=settings)
    write_reports(ctx, out)
    notify(ctx, settings, RunLog(fmt="text"), out_dir=out)
    late = email.message_from_bytes((out / "mail" / f"{LATE_OWNER}.eml").read_bytes(), policy=default)
    text = late.get_body(("plain",)).get_content()
    page = next((out / "owners").glob("late-team*.html")).name
    assert "The whole report: https://reports.example/imvjob/report.html" in text
    assert f"Your page: {LATE_OWNER}: https://reports.example/imvjob/owners/{page}" in text
    assert f'href="https://reports.example/imvjob/owners/{page}"' in late.get_body(("html",)).get_content()
    whole = email.message_from_bytes((out / "mail" / "sec@example.com.eml").read_bytes(), policy=default)
    assert "owners/" not in whole.get_body(("plain",)).get_content()


def test_links_only_where_a_served_address_is_set_and_http():
    snap, results = large_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    view = ctx.restrict(["late"])
    assert report_links(view, "", split=True) == []
    assert report_links(view, "javascript:alert(1)", split=True) == []
    assert report_links(view, "https://r.example/x/", split=False) == [("The whole report",
                                                                        "https://r.example/x/report.html")]
    assert report_links(view, "https://r.example/x", split=True)[1][1].startswith("https://r.example/x/owners/late-team")


def test_every_table_of_an_owner_page_lists_every_row_of_its_scope(tmp_path):
    """An owner with more vulnerabilities than the single page shows (300) finds each on their page."""
    snap, results = large_run()
    wide = make_ref("wide/app", tag="1")
    results[wide] = make_result(wide, *(make_feature(f"lib{i}", "1.0", make_vuln(f"CVE-2025-{10000 + i}", "Medium"))
                                        for i in range(LIMITS["groups"] + 50)))
    snap.pods.append(make_pod("wide", "app-0", wide, workload=("Deployment", "app")))
    snap.namespaces["wide"] = Namespace("wide", {}, {"imvjob/notify": "wide-team@example.com"})
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    write_reports(ctx, tmp_path)
    page = next((tmp_path / "owners").glob("wide-team*.html")).read_text(encoding="utf-8")
    vulnerabilities = page[page.index('id="vulnerabilities"'):]
    assert all(f"CVE-2025-{10000 + i}" in vulnerabilities for i in range(LIMITS["groups"] + 50))
    assert "data-total=" not in page and "most severe of" not in page
    # An image's own list stops at its first lines and says where the others are: on this page.
    assert f"and {LIMITS['groups'] + 50 - LIMITS['image_entries']} more in the Vulnerabilities table below" in page
