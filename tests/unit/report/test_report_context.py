"""The report model: what the reports count, group, compare and warn about."""
from __future__ import annotations

import dataclasses

from job.model import ApplyOutcome, Namespace, Problem, ScanState, Workload
from job.report import build_context
from job.report.groups import vulnerability_groups
from job.report.summary import summary_doc
from tests.factories import (make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot,
                             make_vuln)

WEB = make_ref("shop/web", tag="1")
API = make_ref("shop/api", tag="1")


def build(snapshot, results, *, previous=None, outcome=None, **settings):
    return build_context(snapshot=snapshot, results=results, outcome=outcome, previous=previous,
                         settings=make_settings(**settings))


def web_result(ref=WEB):
    return make_result(
        ref,
        make_feature("openssl", "3.0.1", make_vuln("CVE-1", "Critical", fixed_by="3.0.13"),
                     make_vuln("CVE-2", "High")),
        # The same CVE name in a second package is a second entry, as in the ImageManifestVuln.
        make_feature("openssl-libs", "3.0.1", make_vuln("CVE-1", "Critical", fixed_by="3.0.13")))


def test_image_counts_are_vulnerability_entries_like_the_imagemanifestvuln():
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    ctx = build(snap, {WEB: web_result()})

    image, = ctx.images
    assert image.counts.of("Critical") == 2
    assert image.counts.of("High") == 1
    assert image.counts.total == 3
    assert image.counts.fixable == 2
    assert image.counts.highest == "Critical"


def test_a_manifest_counts_once_in_the_cluster_and_once_in_each_namespace_it_runs_in():
    snap = make_snapshot([make_pod("shop", "web-1", WEB), make_pod("shop", "web-2", WEB),
                          make_pod("staging", "web-1", WEB)])
    ctx = build(snap, {WEB: web_result()})

    assert ctx.totals.counts.total == 3
    assert ctx.totals.imv_objects == 2  # one ImageManifestVuln per (namespace, manifest)
    assert {n.name: n.counts.total for n in ctx.namespaces} == {"shop": 3, "staging": 3}
    image, = ctx.images
    assert image.namespaces == ("shop", "staging")
    assert image.pods == ("shop/web-1", "shop/web-2", "staging/web-1")


def test_images_not_scanned_are_coverage_items_with_their_reason_and_not_counted():
    queued = make_ref("shop/queued")
    unreachable = make_ref("ops/agent", host="registry.local:5000")
    missing = make_ref("ops/other")
    snap = make_snapshot([make_pod("shop", "web-1", WEB, queued), make_pod("ops", "agent-1", unreachable, missing)])
    results = {
        WEB: web_result(),
        # Some registries send a layer with a queued status: it must not be counted.
        queued: dataclasses.replace(
            make_result(queued, make_feature("zlib", "1", make_vuln("CVE-9", "Critical"))),
            state=ScanState.QUEUED, detail="queued for scanning"),
        unreachable: make_result(unreachable, state=ScanState.UNREACHABLE, detail="connection refused"),
    }
    ctx = build(snap, results)

    assert ctx.totals.scanned == 1 and ctx.totals.unscanned == 3
    assert ctx.totals.counts.total == 3
    by_subject = {c.subject: c for c in ctx.coverage if c.kind == "image"}
    assert by_subject[str(queued)].state == "queued" and by_subject[str(queued)].detail == "queued for scanning"
    assert by_subject[str(unreachable)].state == "unreachable" and by_subject[str(unreachable)].job_error
    assert by_subject[str(missing)].state == "no result"
    assert dict(ctx.totals.unscanned_by_state) == {"queued": 1, "unreachable": 1, "no result": 1}
    # Job errors come first: they are the ones to fix on this side.
    assert ctx.coverage[0].job_error


def test_containers_without_a_known_image_and_skipped_pods_are_coverage_items():
    pods = [make_pod("shop", f"web-{i}", WEB, None) for i in range(3)]
    snap = make_snapshot(pods, problems=[Problem("shop/broken", "no containerStatuses")])
    ctx = build(snap, {WEB: web_result()})

    container, = [c for c in ctx.coverage if c.kind == "container"]
    assert container.state == "image not resolved"
    assert container.pods == 3
    assert container.workloads == ("shop/Deployment/web",)
    pod, = [c for c in ctx.coverage if c.kind == "pod"]
    assert (pod.subject, pod.detail) == ("shop/broken", "no containerStatuses")
    assert ctx.totals.unresolved == 3
    assert ctx.totals.problems == 1


def test_a_container_whose_image_is_unknown_is_listed_once():
    pod = make_pod("shop", "web-1", WEB, None)  # container c1 is unresolved
    snap = make_snapshot([pod], problems=[Problem("shop/web-1 container c1", "imageID has no digest"),
                                          Problem("shop/web-1", "malformed initContainerStatuses entry skipped")])
    ctx = build(snap, {WEB: web_result()})
    assert [(c.kind, c.subject) for c in ctx.coverage] == [
        ("container", "shop/Deployment/web container c1: registry.local/unknown:latest"),
        ("pod", "shop/web-1")]


def test_owners_come_from_the_annotation_and_bad_addresses_are_reported_not_used():
    snap = make_snapshot([make_pod("shop", "web-1", WEB), make_pod("pay", "api-1", API)],
                         owners={"shop": "Shop Team <shop@example.com>, oncall@example.com",
                                 "pay": "pay@example.com\r\nBcc: evil@example.net, not-an-address"})
    ctx = build(snap, {WEB: web_result(), API: web_result(API)})

    owners = {n.name: n.owners for n in ctx.namespaces}
    assert owners == {"pay": (), "shop": ("shop@example.com", "oncall@example.com")}
    rejected = [c for c in ctx.coverage if c.kind == "owner"]
    assert [c.namespaces for c in rejected] == [("pay",), ("pay",)]
    assert all("\r" not in c.detail and "\n" not in c.detail for c in rejected)


def test_owners_fall_back_to_a_label_under_the_same_key():
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    snap.namespaces["shop"] = Namespace("shop", labels={"team": "shop@example.com"})
    ctx = build(snap, {WEB: web_result()}, owner_key="team")
    assert ctx.namespaces[0].owners == ("shop@example.com",)


def test_what_to_do_lists_each_affected_workload_with_the_versions_that_fix_it():
    snap = make_snapshot([make_pod("shop", "web-1", WEB, API, workload=("Deployment", "web")),
                          make_pod("shop", "idle-1", make_ref("shop/clean"), workload=("Deployment", "idle"))],
                         owners={"shop": "shop@example.com"})
    clean = make_ref("shop/clean")
    api = make_result(API, make_feature("openssl", "3.0.1", make_vuln("CVE-3", "Medium", fixed_by="3.0.14")))
    ctx = build(snap, {WEB: web_result(), API: api, clean: make_result(clean)})

    web, = ctx.affected_workloads
    assert web.workload == Workload("Deployment", "web")
    assert web.owners == ("shop@example.com",)
    fixes = {(f.package, f.installed): f for f in web.fixes}
    assert fixes[("openssl", "3.0.1")].fixed_by == ("3.0.13", "3.0.14")
    assert fixes[("openssl", "3.0.1")].severity == "Critical"
    assert fixes[("openssl-libs", "3.0.1")].fixed_by == ("3.0.13",)
    assert web.unfixed == 1  # CVE-2 has no fixed version
    assert [w.workload.name for w in ctx.workloads] == ["web", "idle"]  # the urgent first


# --- new and resolved -------------------------------------------------------------------


def previous_of(ctx):
    return summary_doc(ctx)


def test_first_run_has_nothing_new_and_says_there_is_no_previous_run():
    ctx = build(make_snapshot([make_pod("shop", "web-1", WEB)]), {WEB: web_result()})
    assert not ctx.changes.has_previous
    assert ctx.changes.new() == [] and ctx.changes.resolved == ()


def test_a_rebuilt_image_that_still_has_the_flaw_is_not_new_but_a_new_flaw_is():
    run1 = build(make_snapshot([make_pod("shop", "web-1", WEB)], taken_at="2026-05-03T06:00:00Z"),
                 {WEB: web_result()})
    rebuilt = make_ref("shop/web", tag="2")  # a new digest
    result = make_result(rebuilt,
                         make_feature("openssl", "3.0.2", make_vuln("CVE-1", "Critical", fixed_by="3.0.13"),
                                      make_vuln("CVE-7", "High")),
                         make_feature("openssl-libs", "3.0.2", make_vuln("CVE-1", "Critical", fixed_by="3.0.13")))
    run2 = build(make_snapshot([make_pod("shop", "web-2", rebuilt)]), {rebuilt: result}, previous=previous_of(run1))

    new = run2.changes.new()
    assert [(c.namespace, c.workload, c.package, c.vulnerability) for c in new] == \
        [("shop", "Deployment/web", "openssl", "CVE-7")]
    assert new[0].image == "quay.io/shop/web"
    resolved = run2.changes.resolved
    assert [(c.package, c.vulnerability, c.note) for c in resolved] == [("openssl", "CVE-2", "")]
    assert run2.changes.new_counts.of("High") == 1 and run2.changes.resolved_counts.of("High") == 1


def test_a_workload_that_is_gone_has_its_findings_resolved():
    run1 = build(make_snapshot([make_pod("shop", "web-1", WEB), make_pod("shop", "api-1", API)],
                               taken_at="2026-05-03T06:00:00Z"), {WEB: web_result(), API: web_result(API)})
    run2 = build(make_snapshot([make_pod("shop", "web-1", WEB)]), {WEB: web_result()}, previous=previous_of(run1))

    assert {(c.workload, c.note) for c in run2.changes.resolved} == {("Deployment/api", "workload no longer running")}
    assert run2.changes.new() == []


def test_findings_of_an_image_not_scanned_now_are_neither_resolved_nor_new_next_time():
    snap1 = make_snapshot([make_pod("shop", "web-1", WEB)], taken_at="2026-05-02T06:00:00Z")
    run1 = build(snap1, {WEB: web_result()})
    snap2 = make_snapshot([make_pod("shop", "web-1", WEB)], taken_at="2026-05-03T06:00:00Z")
    run2 = build(snap2, {WEB: make_result(WEB, state=ScanState.UNREACHABLE, detail="timeout")},
                 previous=previous_of(run1))
    assert run2.changes.resolved == ()
    assert run2.changes.unchecked == 3  # (openssl, CVE-1), (openssl, CVE-2), (openssl-libs, CVE-1)
    run3 = build(make_snapshot([make_pod("shop", "web-1", WEB)]), {WEB: web_result()}, previous=previous_of(run2))
    assert run3.changes.new() == []


def test_namespaces_outside_this_run_scope_are_not_resolved():
    run1 = build(make_snapshot([make_pod("shop", "web-1", WEB), make_pod("pay", "api-1", API)],
                               taken_at="2026-05-03T06:00:00Z"), {WEB: web_result(), API: web_result(API)})
    run2 = build(make_snapshot([make_pod("shop", "web-1", WEB)], scope=("shop",)), {WEB: web_result()},
                 previous=previous_of(run1))
    assert run2.changes.resolved == ()


def test_an_unusable_previous_summary_is_no_previous_run():
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    for junk in ({"schemaVersion": 99}, {"schemaVersion": 1, "findings": "x"}, {}):
        assert not build(snap, {WEB: web_result()}, previous=junk).changes.has_previous


def test_trend_keeps_the_last_runs_totals():
    previous = None
    for day in range(1, 16):
        ctx = build(make_snapshot([make_pod("shop", "web-1", WEB)], taken_at=f"2026-05-{day:02d}T06:00:00Z"),
                    {WEB: web_result()}, previous=previous)
        previous = previous_of(ctx)
    assert len(ctx.trend) == 12
    assert ctx.trend[-1].current and ctx.trend[-2].taken_at == "2026-05-14T06:00:00Z"
    assert [p["takenAt"] for p in previous["history"]][-1] == "2026-05-15T06:00:00Z"


# --- an owner's share ---------------------------------------------------------------------


def test_a_restricted_context_holds_only_its_namespaces():
    agent = make_ref("ops/agent")
    snap = make_snapshot([make_pod("shop", "web-1", WEB), make_pod("pay", "api-1", API),
                          make_pod("ops", "agent-1", agent)],
                         problems=[Problem("pay/broken", "bad"), Problem("shop/broken", "bad")])
    outcome = ApplyOutcome(created=["shop/x"], failed=[Problem("pay/sha256.x", "422")])
    ctx = build(snap, {WEB: web_result(), API: web_result(API),
                       agent: make_result(agent, state=ScanState.QUEUED)}, outcome=outcome)

    mine = ctx.restrict(["shop"])
    assert mine.only == ("shop",)
    assert [n.name for n in mine.namespaces] == ["shop"]
    assert [i.ref for i in mine.images] == [WEB]
    assert [c.subject for c in mine.coverage] == ["shop/broken"]
    assert mine.totals.counts.total == 3 and mine.apply is None
    assert ctx.totals.counts.total == 6 and ctx.apply is not None


# --- the first sentence ---------------------------------------------------------------------


def test_headline_never_reads_as_all_clear_when_nothing_was_scanned():
    snap = make_snapshot([make_pod("shop", "web-1", WEB)])
    ctx = build(snap, {WEB: make_result(WEB, state=ScanState.UNAUTHORIZED, detail="401")})
    assert ctx.headline == "No image could be scanned: 1 image not scanned, see Coverage"


def test_headline_of_a_clean_cluster_says_what_was_scanned_and_what_was_not():
    clean = make_ref("shop/clean")
    queued = make_ref("shop/queued")
    snap = make_snapshot([make_pod("shop", "web-1", clean, queued)])
    ctx = build(snap, {clean: make_result(clean), queued: make_result(queued, state=ScanState.QUEUED)})
    assert ctx.headline == "No known vulnerabilities in 1 scanned image; 1 image not scanned"


def test_headline_names_the_worst_severities():
    ctx = build(make_snapshot([make_pod("shop", "web-1", WEB)]), {WEB: web_result()})
    assert ctx.headline == "2 Critical and 1 High of 3 vulnerabilities in 1 of 1 image"


def test_fixed_by_versions_read_in_one_order_in_every_view():
    """Two images list the same package's fixes in opposite orders: every view says them alike."""
    from dataclasses import replace

    from job.report.fixes import fixes_of, merge_fixes

    def feature(*fixed: str):
        vulns = [make_vuln(f"CVE-2024-{i}", "High", fixed_by=v) for i, v in enumerate(fixed)]
        return replace(make_feature("libfoo", "1.0.1-1", *vulns), version_format="", namespace_name="")

    one, two = feature("1.0.1-1.14", "1.0.1-1.12"), feature("1.0.1-1.12", "1.0.1-1.14")
    a, b = make_ref("shop/a"), make_ref("shop/b")
    entries = [[(f, v) for v in f.vulnerabilities] for f in (one, two)]
    assert fixes_of(entries[0])[0].to == fixes_of(entries[1])[0].to == "1.0.1-1.12, 1.0.1-1.14"
    assert merge_fixes([fixes_of(entries[1]), fixes_of(entries[0])])[0].fixed_by == ("1.0.1-1.12", "1.0.1-1.14")
    snap = make_snapshot([make_pod("shop", "a-1", a), make_pod("shop", "b-1", b)])
    for order in ((one, two), (two, one)):
        results = {a: make_result(a, order[0]), b: make_result(b, order[1])}
        ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
        groups, _n = vulnerability_groups(ctx.images, 10)
        assert {g.fixed_by for g in groups} == {("1.0.1-1.12", "1.0.1-1.14")}
        assert [w.fixes[0].to for w in ctx.affected_workloads] == ["1.0.1-1.12, 1.0.1-1.14"] * 2
