"""The report ranks by triage, and carries each finding's first sighting from run to run."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from job.model import ScanState
from job.report import Triage, build_context, load_previous
from job.report.summary import summary_doc
from job.triage import Feeds, KevEntry, parse_sla
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot, make_vuln

SLA = parse_sla("Critical=7d,High=30d,Medium=90d")
MAY_4 = "2026-05-04T06:00:00Z"
APRIL_1 = "2026-04-01T06:00:00Z"
WEB, API, DB = make_ref("shop/web", tag="1"), make_ref("shop/api"), make_ref("data/db")
WEB2 = make_ref("shop/web", tag="2")  # web rebuilt: a new digest, the same flaw


def day(text: str) -> int:
    return dt.date.fromisoformat(text).toordinal()


def build(pods, results, *, taken_at=MAY_4, previous=None, feeds=Feeds()):
    snap = make_snapshot(pods, taken_at=taken_at)
    return build_context(snapshot=snap, results=results, outcome=None, previous=previous,
                         settings=make_settings(), triage=Triage(feeds, SLA))


def results(web=WEB):
    return {
        web: make_result(web, make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0001", "High", fixed_by="3.0.2"))),
        API: make_result(API, make_feature("libxml2", "2.9", make_vuln("CVE-2024-0002", "Critical", fixed_by="2.10"),
                                           make_vuln("CVE-2024-0003", "Critical"))),
        DB: make_result(DB, make_feature("glibc", "2.36", make_vuln("CVE-2023-4911", "Low"))),
    }


PODS = [make_pod("shop", "web-1", WEB), make_pod("shop", "api-1", API), make_pod("data", "db-1", DB)]


def test_kev_findings_rank_first_then_severity_fixable_first_and_rows_name_their_cves():
    feeds = Feeds(kev={"CVE-2023-4911": KevEntry(day("2026-05-20"), True)}, epss={"CVE-2024-0001": 0.4})
    ctx = build(PODS, results(), feeds=feeds)
    assert [w.label for w in ctx.affected_workloads] == ["Deployment/db", "Deployment/api", "Deployment/web"]
    db, api, web = ctx.affected_workloads
    assert db.triage.top[0].kev_cve == "CVE-2023-4911" and db.triage.top[0].flags == ("KEV", "ransomware")
    assert db.triage.first_due_text == "2026-05-20"  # KEV's due date; Low has no SLA
    assert [f.vulnerability for f in api.triage.top] == ["CVE-2024-0002", "CVE-2024-0003"]  # fixable first
    assert web.triage.top[0].flags == ("EPSS 40%",)
    assert summary_doc(ctx)["totals"]["exploited"] == 1


def test_first_seen_survives_a_rebuild_and_makes_old_findings_overdue(tmp_path: Path):
    first = build(PODS, results(), taken_at=APRIL_1)
    assert first.overdue == [] and summary_doc(first)["findings"]["firstSeen"] == []

    pods = [make_pod("shop", "web-1", WEB2), make_pod("shop", "api-1", API), make_pod("data", "db-1", DB)]
    later = build(pods, results(WEB2), previous=summary_doc(first))
    overdue = [(w.label, f.vulnerability, f.days_open(later.today)) for w, f in later.overdue]
    # Critical due 7 days after April 1, High 30 days after: both overdue; Low has no deadline.
    assert overdue == [("Deployment/api", "CVE-2024-0002", 33), ("Deployment/api", "CVE-2024-0003", 33),
                       ("Deployment/web", "CVE-2024-0001", 33)]
    doc = summary_doc(later)
    assert {n["name"]: n["overdue"] for n in doc["namespaces"]} == {"data": 0, "shop": 3}
    assert doc["totals"]["overdue"] == 3
    # The next run still knows they were first seen on April 1.
    assert {row[1] for row in doc["findings"]["firstSeen"]} == {"2026-04-01"}
    third = build(pods, results(WEB2), taken_at="2026-05-05T06:00:00Z", previous=doc)
    assert all(f.days_open(third.today) == 34 for _w, f in third.overdue)


def test_a_new_finding_starts_its_clock_at_this_run():
    first = build(PODS[:1], results(), taken_at=APRIL_1)
    later = build(PODS, results(), previous=summary_doc(first))
    api = next(w for w in later.workloads if w.label == "Deployment/api")
    assert api.triage.oldest == 0 and api.triage.first_due_text == "2026-05-11"
    assert [w.label for w, _f in later.overdue] == ["Deployment/web"]


def test_a_summary_without_first_seen_dates_its_findings_to_its_run_and_a_damaged_one_starts_afresh(tmp_path):
    first = summary_doc(build(PODS, results(), taken_at=APRIL_1))
    del first["findings"]["firstSeen"]  # written by an older imvjob
    assert len(build(PODS, results(), previous=first).overdue) == 3

    first["findings"]["firstSeen"] = [[0, "2020-01-01", [99]]]  # an index that does not exist
    (tmp_path / "summary.json").write_text(__import__("json").dumps(first))
    snap = make_snapshot(PODS, taken_at=MAY_4)
    prev = load_previous(tmp_path, current=snap)
    assert prev is not None and prev.first_seen == {}
    assert any("first-seen days are damaged" in p.message for p in snap.problems)


def test_a_finding_carried_forward_through_an_outage_keeps_its_first_sighting():
    first = summary_doc(build(PODS, results(), taken_at=APRIL_1))
    outage = {**results(), WEB: make_result(WEB, state=ScanState.UNREACHABLE, detail="down")}
    during = summary_doc(build(PODS, outage, taken_at="2026-04-20T06:00:00Z", previous=first))
    after = build(PODS, results(), previous=during)
    web = next(w for w in after.workloads if w.label == "Deployment/web")
    assert web.triage.oldest == 33 and len(web.triage.overdue) == 1


def test_one_target_version_per_package_fixes_all_of_its_vulnerabilities():
    ref = make_ref("shop/deb")
    openssl = make_feature("openssl", "3.0.2-0ubuntu1.10",
                           make_vuln("CVE-2023-5678", "Medium", fixed_by="3.0.2-0ubuntu1.12"),
                           make_vuln("CVE-2024-0727", "Low", fixed_by="3.0.2-0ubuntu1.14"),
                           make_vuln("CVE-2024-2511", "Low", fixed_by="3.0.2-0ubuntu1.9"))
    openssl = openssl.__class__(**{**{f: getattr(openssl, f) for f in openssl.__slots__}, "version_format": "dpkg"})
    ctx = build([make_pod("shop", "deb-1", ref)], {ref: make_result(ref, openssl)})
    fix, = ctx.workloads[0].fixes
    assert (fix.target, fix.vulnerabilities, fix.to) == ("3.0.2-0ubuntu1.14", 3, "3.0.2-0ubuntu1.14")
    assert fix.fixed_by == ("3.0.2-0ubuntu1.9", "3.0.2-0ubuntu1.12", "3.0.2-0ubuntu1.14")  # all kept, lowest first


def test_findings_of_the_base_image_layer_are_named_as_such():
    from dataclasses import replace

    from job.report.html import render_html
    from job.report.xlsx import xlsx_bytes

    ref = make_ref("shop/app")
    base = "sha256:" + "b" * 64
    features = [replace(make_feature("base-files", "12.4"), added_by=base),
                replace(make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0727", "High", fixed_by="3.0.2"),
                                     make_vuln("CVE-2023-5678", "Low")), added_by=base),
                replace(make_feature("log4j-core", "2.14.1", make_vuln("CVE-2021-44228", "Critical")),
                        added_by="sha256:" + "a" * 64)]
    ctx = build([make_pod("shop", "app-1", ref)], {ref: make_result(ref, *features)})
    assert ctx.workloads[0].base_hint == (2, 3)
    import re
    assert "2 of 3 are in the base image: rebuild from a newer base" in re.sub(r"<[^>]+>", "", render_html(ctx))
    import io

    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(ctx)))
    head, row = list(wb["Workloads"].iter_rows(values_only=True))[:2]
    assert dict(zip(head, row))["In the base image"] == "2 of 3"
    # A registry that does not say which layer added a package: no hint at all.
    plain = build([make_pod("shop", "app-1", ref)], {ref: make_result(ref, make_feature("openssl", "3.0.1",
                                                                                         make_vuln("CVE-1")))})
    assert plain.workloads[0].base_hint == (0, 0)


def test_an_owners_share_ranks_as_a_report_of_its_namespaces_alone():
    """A share reuses the whole report's ranking only where it would rank the same: a flaw that is High
    in another namespace's image and Low in this one's is Low, with its deadline, in this share."""
    shared = make_feature("zlib", "1.2.11", make_vuln("CVE-2022-1", "Low"))
    pods = [make_pod("shop", "web-1", WEB, workload=("Deployment", "web")),
            make_pod("data", "db-1", DB, workload=("Deployment", "db"))]
    res = {WEB: make_result(WEB, make_feature("zlib", "1.2.11", make_vuln("CVE-2022-1", "High"))),
           DB: make_result(DB, shared, make_feature("openssl", "3.0.1", make_vuln("CVE-2024-9", "Medium")))}
    whole = build(pods, res)
    share = whole.restrict(["data"])
    alone = build([pods[1]], res)
    ranked = [[(f.vulnerability, f.severity, f.due) for f in w.triage.top] for w in share.workloads]
    assert ranked == [[(f.vulnerability, f.severity, f.due) for f in w.triage.top] for w in alone.workloads]
    assert ("CVE-2022-1", "Low", 0) in ranked[0]
    assert [w.triage.top for w in whole.restrict(["shop"]).workloads] == [w.triage.top for w in whole.workloads
                                                                            if w.namespace == "shop"]
