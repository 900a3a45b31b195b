"""A run with triage inputs for the real readers' tests: KEV and EPSS files in the real formats
and a previous run 33 days earlier, so that findings are exploited, overdue and ranked."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from job import feeds
from job.report import Triage, build_context, load_previous
from job.report.summary import summary_doc
from job.triage import day_of, parse_sla
from tests.factories import make_feature, make_pod, make_ref, make_result, make_settings, make_snapshot, make_vuln
from tests.feed_files import write_epss, write_kev

APRIL_1, MAY_4 = "2026-04-01T06:00:00Z", "2026-05-04T06:00:00Z"
WEB, API, DB = make_ref("shop/web", tag="7"), make_ref("shop/api", tag="3"), make_ref("payments/db")
OWNERS = {"shop": "shop-team@example.com", "payments": "payments@example.com"}


BASE, APP = "sha256:" + "b" * 64, "sha256:" + "a" * 64  # the layers that added the packages


def _results():
    openssl = make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0727", "Critical", fixed_by="3.0.13"),
                           make_vuln("CVE-2023-5678", "Medium", fixed_by="3.0.12"))
    curl = make_feature("curl", "7.61.1", make_vuln("CVE-2023-38545", "High", fixed_by="7.61.1-34"))
    return {
        WEB: make_result(WEB, replace(make_feature("basesystem", "11"), added_by=BASE),
                         replace(openssl, added_by=BASE), replace(curl, added_by=APP)),
        API: make_result(API, make_feature("glibc", "2.28", make_vuln("CVE-2023-4911", "High", fixed_by="2.28-236"))),
        DB: make_result(DB, make_feature("log4j-core", "2.14.1", make_vuln("CVE-2021-44228", "Medium",
                                                                             fixed_by="2.17.1"))),
    }


def _pods(with_db: bool):
    pods = [make_pod("shop", "web-5d8f-1", WEB), make_pod("shop", "api-7c9-x", API)]
    return pods + ([make_pod("payments", "db-0", DB, workload=("StatefulSet", "db"))] if with_db else [])


def triage_context(tmp: Path, *, kev_text: str | None = None, epss_date: str = "2026-04-01T00:00:00+0000",
                   rules: tuple = ()):
    """The report context of May 4th: KEV fresh (or kev_text as the file), EPSS stale unless told;
    rules: exception entries and VEX statements (job.exceptions.Rule) to accept findings with."""
    before = build_context(snapshot=make_snapshot(_pods(False), taken_at=APRIL_1, owners=OWNERS),
                           results=_results(), outcome=None, previous=None, settings=make_settings())
    out = tmp / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary_doc(before)))

    kev = tmp / "kev.json"
    if kev_text is None:
        write_kev(kev, {"CVE-2023-4911": ("2026-04-20", False), "CVE-2021-44228": ("2026-05-30", True)})
    else:
        kev.write_text(kev_text)
    epss = write_epss(tmp / "epss.csv", {"CVE-2024-0727": 0.003, "CVE-2023-38545": 0.25, "CVE-2021-44228": 0.94},
                      score_date=epss_date)
    snap = make_snapshot(_pods(True), taken_at=MAY_4, owners=OWNERS)
    results = _results()
    read = feeds.load(kev_source=str(kev), epss_source=str(epss), results=results.values(),
                      today=day_of(MAY_4), max_age_days=7)
    previous = load_previous(out, current=snap)
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=previous, settings=make_settings(),
                        triage=Triage(read, parse_sla("Critical=7d,High=30d,Medium=90d"), tuple(rules),
                                      vex_documents=int(any(r.origin == "vex" for r in rules))))
    return ctx, out
