"""Triage rules: which CVEs a finding names, its deadline, and what comes first."""
from __future__ import annotations

import datetime as dt

import pytest

from job.model import Feature, Vulnerability
from job.triage import (Feeds, KevEntry, cve_ids, day_of, due_day, finding, iso_day, parse_sla, rank,
                        wanted_cves)
from tests.factories import make_feature, make_vuln

DAY = dt.date(2026, 5, 4).toordinal()
SLA = parse_sla("Critical=7d,High=30d,Medium=90d")


def test_cve_ids_come_from_the_name_then_aliases_then_links_then_the_package():
    assert cve_ids(make_feature(), make_vuln("cve-2024-1234")) == ("CVE-2024-1234",)
    ghsa = Vulnerability("GHSA-abcd-efgh-ijkl", "High", metadata={"aliases": ["GHSA-x", "CVE-2023-0001"]},
                         link="")
    assert cve_ids(make_feature(), ghsa) == ("CVE-2023-0001",)
    rhsa = Vulnerability("RHSA-2024:0001", "High", link="https://x/CVE-2024-0002 https://x/CVE-2024-0003")
    assert cve_ids(make_feature(), rhsa) == ("CVE-2024-0002", "CVE-2024-0003")
    alone = Vulnerability("RHSA-2024:0009", "High")
    assert cve_ids(Feature("p", "1", cve_ids=("CVE-2024-0009",), vulnerabilities=(alone,)), alone) == \
        ("CVE-2024-0009",)
    # Two advisories in one package: the package's CVE list cannot say which is whose.
    other = Vulnerability("RHSA-2024:0010", "High")
    assert cve_ids(Feature("p", "1", cve_ids=("CVE-2024-0009",), vulnerabilities=(alone, other)), alone) == ()


def test_hostile_metadata_and_names_yield_no_more_than_a_few_cve_ids():
    odd = Vulnerability("x" * 10_000, "High", metadata={"aliases": "CVE-2024-0001"}, link="CVE-2024-1 " * 10_000)
    assert cve_ids(make_feature(), odd) == ()
    many = Vulnerability(" ".join(f"CVE-2024-{i:04d}" for i in range(1000)), "High")
    assert len(cve_ids(make_feature(), many)) == 16
    assert wanted_cves([make_feature("a", "1", make_vuln("CVE-2024-0001"), make_vuln("GHSA-1", link=""))]) == \
        {"CVE-2024-0001"}


def test_sla_policy_parses_days_per_severity_and_rejects_anything_else():
    assert SLA == {"Critical": 7, "High": 30, "Medium": 90}
    assert parse_sla(" critical = 3 , low=365d") == {"Critical": 3, "Low": 365}
    assert parse_sla("") == {}
    for bad in ("Critical", "Critical=7w", "Urgent=1d", "High=-1d", "High=99999d"):
        with pytest.raises(ValueError):
            parse_sla(bad)


def test_due_date_is_first_seen_plus_the_policy_or_the_kev_due_date_when_sooner():
    assert due_day(first_seen=DAY, severity="High", sla=SLA, kev=None) == DAY + 30
    assert due_day(first_seen=DAY, severity="Low", sla=SLA, kev=None) == 0
    assert due_day(first_seen=DAY, severity="High", sla=SLA, kev=KevEntry(DAY + 5, False)) == DAY + 5
    assert due_day(first_seen=DAY, severity="High", sla=SLA, kev=KevEntry(DAY + 50, False)) == DAY + 30
    assert due_day(first_seen=DAY, severity="Low", sla=SLA, kev=KevEntry(DAY + 50, False)) == DAY + 50


def test_days_open_and_overdue_count_from_the_first_sighting():
    f = finding("openssl", "CVE-1", "Critical", fixable=True, cves=("CVE-1",), feeds=Feeds(), first_seen=DAY - 10,
                sla=SLA)
    assert f.days_open(DAY) == 10
    assert iso_day(f.due) == "2026-05-01"
    assert f.overdue(DAY) and not f.overdue(DAY - 3)


def test_ranking_kev_first_then_severity_fixable_first_then_epss():
    feeds = Feeds(kev={"CVE-K1": KevEntry(DAY + 20, False), "CVE-K2": KevEntry(DAY + 9, False),
                       "CVE-KR": KevEntry(DAY + 30, True)},
                  epss={"CVE-H1": 0.02, "CVE-H2": 0.9, "CVE-L": 0.99})

    def f(name, severity="High", fixable=True):
        return finding("p", name, severity, fixable=fixable, cves=(name,), feeds=feeds, first_seen=DAY, sla=SLA)

    findings = [f("CVE-L", "Low"), f("CVE-H1"), f("CVE-C", "Critical", fixable=False), f("CVE-K1", "Low"),
                f("CVE-H2"), f("CVE-C2", "Critical"), f("CVE-K2", "Medium"), f("CVE-KR", "Low"),
                f("CVE-H3", fixable=False)]
    order = [x.vulnerability for x in sorted(findings, key=rank)]
    assert order == ["CVE-KR", "CVE-K2", "CVE-K1", "CVE-C2", "CVE-C", "CVE-H2", "CVE-H1", "CVE-H3", "CVE-L"]
    assert f("CVE-KR").flags == ("KEV", "ransomware")
    assert f("CVE-H2").flags == ("EPSS 90%",)


def test_day_of_reads_the_date_of_an_rfc3339_time_and_nothing_else():
    assert iso_day(day_of("2026-05-04T06:00:00Z")) == "2026-05-04"
    assert day_of("yesterday") == 0 and day_of(None) == 0  # type: ignore[arg-type]
