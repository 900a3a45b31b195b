"""Accepted findings in the report: out of the ranking and the overdue list while the entry holds,
counted per namespace and severity, listed with their entry; expiring and expired entries listed."""
from __future__ import annotations

import datetime as dt

from job.exceptions import parse_entries
from job.report import Triage, build_context
from job.report.summary import summary_doc
from job.triage import parse_sla
from job.vex import parse as parse_vex
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot, make_vuln
from tests.summary_schema import documented_fields, field_paths
from tests.vex_files import document, statement

SLA = parse_sla("Critical=7d,High=30d,Medium=90d")
MAY_4 = "2026-05-04T06:00:00Z"
WEB, API, DB = make_ref("shop/web"), make_ref("shop/api"), make_ref("data/db")


def results():
    return {
        WEB: make_result(WEB, make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0001", "High", fixed_by="3.0.2"))),
        API: make_result(API, make_feature("libxml2", "2.9", make_vuln("CVE-2024-0002", "Critical"),
                                           make_vuln("CVE-2024-0003", "Critical"))),
        DB: make_result(DB, make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0001", "High", fixed_by="3.0.2"))),
    }


PODS = [make_pod("shop", "web-1", WEB), make_pod("shop", "api-1", API), make_pod("data", "db-1", DB)]
ENTRIES = {"exceptions": [
    {"namespace": "shop", "vulnerability": "CVE-2024-0001", "reason": "TLS is terminated by the mesh",
     "by": "alice@example.com", "until": "2026-09-01", "ticket": "https://tickets.example/SEC-1"},
    {"workload": "Deployment/api", "vulnerability": "CVE-2024-0003", "reason": "parser not used",
     "by": "bob@example.com", "until": "2026-05-10"},
    {"package": "libxml2", "vulnerability": "CVE-2024-0002", "reason": "expired review", "by": "carol@example.com",
     "until": "2026-05-04"},
]}


def build(rules, *, pods=PODS, previous=None, only=None, vex_documents=0):
    snap = make_snapshot(pods, taken_at=MAY_4, owners={"shop": "shop@example.com", "data": "data@example.com"})
    ctx = build_context(snapshot=snap, results=results(), outcome=None, previous=previous, settings=make_settings(),
                        triage=Triage(sla=SLA, rules=tuple(rules), soon_days=14, vex_documents=vex_documents))
    return ctx if only is None else ctx.restrict(only)


def rules():
    return parse_entries(ENTRIES, source="exceptions file e.yaml")


def test_accepted_findings_leave_the_ranking_and_are_listed_with_their_entry():
    ctx = build(rules())
    acc = ctx.accepted
    assert [(r.namespace, r.workload, r.vulnerability, r.state) for r in acc.rows] == [
        ("shop", "api", "CVE-2024-0003", "expiring soon"), ("shop", "web", "CVE-2024-0001", "accepted")]
    web = next(w for w in ctx.workloads if w.workload.name == "web")
    api = next(w for w in ctx.workloads if w.workload.name == "api")
    db = next(w for w in ctx.workloads if w.workload.name == "db")
    assert web.triage is None  # its one finding is accepted: nothing to rank
    assert [f.vulnerability for f in api.triage.top] == ["CVE-2024-0002"]  # the expired entry accepts nothing
    assert [f.vulnerability for f in db.triage.top] == ["CVE-2024-0001"]  # another namespace: not accepted
    assert web.counts.total == 1  # vulnerabilities stay what the registry says
    assert dict(acc.by_namespace) == {"shop": (0, 0, 0, 0, 1, 1, 0)}
    assert acc.rows[1].rule.ticket == "https://tickets.example/SEC-1" and acc.rows[0].days_left == 6
    assert [(e.rule.reason, e.why, e.findings) for e in acc.expired] == [("expired review", "ended 2026-05-04", 1)]
    assert ctx.headline.endswith("; 2 findings accepted (exceptions and VEX)")


def test_an_accepted_finding_is_not_overdue_while_its_entry_holds_and_is_again_once_it_ends():
    april = build_context(snapshot=make_snapshot(PODS, taken_at="2026-03-01T06:00:00Z"), results=results(),
                          outcome=None, previous=None, settings=make_settings(), triage=Triage(sla=SLA))
    previous = summary_doc(april)
    now = build(rules(), previous=previous)
    assert {(w.workload.name, f.vulnerability) for w, f in now.overdue} == {("db", "CVE-2024-0001"),
                                                                           ("api", "CVE-2024-0002")}
    without = build([], previous=previous)
    assert ("web", "CVE-2024-0001") in {(w.workload.name, f.vulnerability) for w, f in without.overdue}
    assert summary_doc(now)["findings"]["firstSeen"] == summary_doc(without)["findings"]["firstSeen"]


def test_a_finding_is_accepted_only_when_every_image_of_its_workload_is_covered():
    both = [make_pod("shop", "web-1", WEB, DB, workload=("Deployment", "web"))]
    scoped = parse_entries([{"image": "quay.io/shop/*", "vulnerability": "CVE-2024-0001", "reason": "r", "by": "b",
                             "until": "2027-01-01"}], source="f")
    ctx = build(scoped, pods=both)
    assert ctx.accepted.total == 0 and ctx.workloads[0].triage.findings == 1


def test_vex_not_affected_accepts_with_its_justification_and_author():
    doc = document(statement("CVE-2024-0002", "quay.io/shop/api", impact="the XML parser is never fed input"))
    ctx = build(parse_vex(doc, source="VEX api.json"), vex_documents=1)
    (row,) = ctx.accepted.rows
    assert (row.vulnerability, row.origin, row.rule.until_text) == ("CVE-2024-0002", "OpenVEX", "no end date")
    assert row.rule.reason.startswith("not affected: vulnerable code not in execute path")
    assert ctx.accepted.vex_documents == 1


def test_an_owners_share_lists_only_its_accepted_findings_and_the_expired_entries_that_concern_it():
    data = build(rules(), only=["data"])
    assert data.accepted.total == 0 and data.accepted.expired == ()
    shop = build(rules(), only=["shop"])
    assert shop.accepted.total == 2 and len(shop.accepted.expiring) == 1 and len(shop.accepted.expired) == 1


def test_summary_json_carries_accepted_findings_and_every_field_is_documented():
    doc = summary_doc(build(rules()))
    acc = doc["accepted"]
    assert acc["total"] == doc["totals"]["accepted"] == 2 and acc["expiringSoon"] == 1
    assert acc["bySeverity"]["Critical"] == 1 and acc["bySeverity"]["High"] == 1
    assert acc["namespaces"] == [{"name": "shop", "accepted": {"Defcon1": 0, "Critical": 1, "High": 1, "Medium": 0,
                                                               "Low": 0, "Negligible": 0, "Unknown": 0}}]
    first = acc["findings"][0]
    assert first["entry"]["until"] == "2026-05-10" and first["entry"]["origin"] == "file"
    assert first["entry"]["source"] == "exceptions file e.yaml, entry 2 (CVE-2024-0003 in Deployment/api)"
    assert acc["expired"][0]["why"] == "ended 2026-05-04"
    assert [n["accepted"] for n in doc["namespaces"]] == [0, 2]
    assert {p for p in field_paths(doc) if "accepted" in p} - documented_fields() == set()
