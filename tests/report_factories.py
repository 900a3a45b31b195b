"""Report runs that tests build on: a cluster large enough for pages per owner."""
from __future__ import annotations

from tests.factories import make_feature, make_pod, make_ref, make_result, make_snapshot, make_vuln

LATE_OWNER = "late-team@example.com"


def large_run():
    """More affected workloads than the page shows: the last ones (Low, owner late-team) are cut."""
    results, pods = {}, []
    for i, cvss in enumerate((3.7, 10.0, 9.8, 5.0)):
        ref = make_ref(f"shop/app{i}", tag="1")
        results[ref] = make_result(ref, make_feature("openssl", "3.0.1", make_vuln(
            f"CVE-2024-{1000 + i}", "High", fixed_by="3.0.13", cvss=cvss)))
        pods += [make_pod(f"ns-{n}", f"web{i}-{n}-0", ref, workload=("Deployment", f"web{i}-{n}"))
                 for n in range(80)]
    late = make_ref("late/tool", tag="2")
    results[late] = make_result(late, make_feature("zlib", "1.2.11", make_vuln("CVE-2022-1", "Low", cvss=2.0)))
    pods += [make_pod("late", f"tool-{n}-0", late, workload=("Deployment", f"tool-{n}")) for n in range(20)]
    owners = {f"ns-{n}": "shop-team@example.com" for n in range(80)} | {"late": LATE_OWNER}
    return make_snapshot(pods, cluster="big", owners=owners), results
