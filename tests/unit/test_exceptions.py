"""Exception entries: scope matching, expiry on a fixed day, and validation that names the entry."""
from __future__ import annotations

import datetime as dt

import pytest

from job.exceptions import FIXABLE, EntryError, Occurrence, Rule, decide, matches, parse_entries, state

DAY = dt.date(2026, 5, 4).toordinal()


def occ(**kw) -> Occurrence:
    base = dict(namespace="shop", kind="Deployment", name="web", repository="quay.io/shop/web",
                digest="sha256:" + "a" * 64, package="openssl", version="3.0.1", vulnerability="RHSA-2024:1",
                cves=("CVE-2024-0001",), fixable=False)
    return Occurrence(**{**base, **kw})


def entry(**kw) -> dict:
    return {"reason": "not reachable", "by": "alice@example.com", "until": "2026-06-01", **kw}


@pytest.mark.parametrize("scope, hit", [
    ({"namespace": "shop"}, True),
    ({"namespace": "sh*"}, True),
    ({"namespace": "bank"}, False),
    ({"workload": "Deployment/web"}, True),
    ({"workload": "deployment/w*"}, True),  # kinds are matched whatever their case
    ({"workload": "StatefulSet/web"}, False),
    ({"workload": "web"}, True),  # a name alone: any kind
    ({"image": "quay.io/shop/*"}, True),
    ({"image": "quay.io/bank/*"}, False),
    ({"package": "openssl"}, True),
    ({"package": "zlib"}, False),
    ({"vulnerability": "CVE-2024-0001"}, True),  # one of the entry's CVEs
    ({"vulnerability": "cve-2024-0001"}, True),
    ({"vulnerability": "RHSA-2024:1"}, True),  # the advisory's own id
    ({"vulnerability": "CVE-2024-0002"}, False),
    ({"namespace": "shop", "package": "openssl", "vulnerability": "CVE-2024-*"}, True),
    ({"namespace": "shop", "package": "zlib", "vulnerability": "CVE-2024-*"}, False),  # every key must match
])
def test_an_entry_matches_what_every_key_of_its_scope_matches(scope, hit):
    (rule,) = parse_entries({"exceptions": [entry(**scope)]}, source="f")
    assert matches(rule, occ()) is hit


def test_a_date_holds_until_the_day_before_it_and_is_expiring_soon_within_the_setting():
    (rule,) = parse_entries([entry(vulnerability="CVE-2024-0001", until=dt.date(2026, 5, 20))], source="f")
    assert state(rule, today=DAY, fixable=False, soon_days=14) == "active"  # 16 days left
    assert state(rule, today=DAY + 2, fixable=False, soon_days=14) == "expiring"  # 14 days left
    assert state(rule, today=DAY + 15, fixable=False, soon_days=14) == "expiring"  # the last day
    assert state(rule, today=DAY + 16, fixable=False, soon_days=14) == "expired"  # on its date
    assert state(rule, today=DAY + 400, fixable=False, soon_days=14) == "expired"


def test_until_fixable_holds_while_no_fixed_version_exists():
    (rule,) = parse_entries([entry(package="openssl", until="fixable")], source="f")
    assert rule.until == FIXABLE
    assert state(rule, today=DAY, fixable=False, soon_days=14) == "active"
    assert state(rule, today=DAY, fixable=True, soon_days=14) == "expired"


def test_the_latest_vex_statement_decides_and_exception_entries_always_count():
    file_rule = Rule(package="openssl", reason="r", by="b", until=DAY + 10)
    old = Rule(vulnerability="CVE-2024-0001", origin="vex", status="not_affected", timestamp="2026-01-01T00:00:00Z")
    new = Rule(vulnerability="CVE-2024-0001", origin="vex", status="affected", timestamp="2026-03-01T00:00:00Z")
    assert decide([old, new], occ()) == [new] and not new.accepts
    assert decide([new, old, file_rule], occ()) == [file_rule, new]


@pytest.mark.parametrize("item, words", [
    ({"package": "openssl", "by": "a", "until": "2026-06-01"}, "entry 1 (openssl): reason is required"),
    ({"package": "openssl", "reason": "r", "by": "a"}, "entry 1 (openssl): until is required"),
    ({"package": "openssl", "reason": "r", "until": "2026-06-01"}, "entry 1 (openssl): by is required"),
    (entry(package="openssl", util="2026-06-01"), "entry 1 (openssl): unknown key 'util'"),
    (entry(package="openssl", until="next spring"), "until 'next spring' is not a date"),
    (entry(package="openssl", until="2026-02-30"), "until '2026-02-30' is not a date"),
    (entry(package="open[ssl"), "package 'open[ssl' is not a valid glob"),
    (entry(workload="a/b/c"), "workload 'a/b/c' must be Kind/name or a name"),
    (entry(), "entry 1: no scope"),
    (entry(package="openssl", ticket="javascript:alert(1)"), "ticket must be an http(s) link"),
    (entry(package="openssl", reason="line\nBcc: x@evil.example"), "reason must be one line"),
    ("openssl", "entry 1: not a mapping"),
])
def test_a_bad_entry_is_an_error_naming_it(item, words):
    with pytest.raises(EntryError) as err:
        parse_entries({"exceptions": [entry(package="zlib"), item][1:]}, source="exceptions file x.yaml")
    assert "exceptions file x.yaml, entry 1" in str(err.value) and words in str(err.value)


def test_an_unknown_top_level_key_and_an_entry_further_down_are_named():
    with pytest.raises(EntryError, match="unknown key 'exception'"):
        parse_entries({"exception": []}, source="f")
    with pytest.raises(EntryError, match=r"f, entry 2 \(CVE-2024-9\): reason is required"):
        parse_entries({"exceptions": [entry(package="zlib"), {"vulnerability": "CVE-2024-9", "by": "b",
                                                               "until": "2026-01-01"}]}, source="f")


def test_an_annotation_entry_is_held_to_its_namespace():
    (rule,) = parse_entries([entry(package="openssl")], source="ns", origin="annotation", namespace="shop")
    assert rule.namespace == "shop" and rule.origin == "annotation"
    assert not matches(rule, occ(namespace="bank"))
    with pytest.raises(EntryError, match="may not name another namespace"):
        parse_entries([entry(namespace="bank", package="openssl")], source="ns", origin="annotation",
                      namespace="shop")


def test_the_index_finds_the_same_entries_as_a_scan_of_every_rule():
    from job.exceptions import RuleIndex

    rules = parse_entries([entry(vulnerability="CVE-2024-0001"), entry(vulnerability="rhsa-2024:1"),
                           entry(vulnerability="CVE-2024-*"), entry(package="openssl"),
                           entry(vulnerability="CVE-2024-0002")], source="f")
    index = RuleIndex(rules)
    for o in (occ(), occ(vulnerability="CVE-2024-0002", cves=()), occ(package="zlib", cves=("CVE-2023-1",))):
        assert sorted(map(id, decide(index, o))) == sorted(map(id, decide(rules, o)))
