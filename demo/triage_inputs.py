"""What `make demo` ranks with: small KEV and EPSS files in the real formats, and a previous run.

    python demo/triage_inputs.py --out reports/demo-inputs

Dated from today, so the feeds are fresh and the previous run is 40 days old: the demo's page
opens with overdue findings and ranks the exploited ones first. Also an exceptions file (one
entry accepted, one expiring soon, one expired) and an OpenVEX document, for the Accepted section. The KEV entries are the
catalogue's own (due dates, ransomware use); the EPSS scores are made up.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
from pathlib import Path

KEV = {  # cveID: (dueDate, knownRansomwareCampaignUse), as the CISA catalogue lists them
    "CVE-2021-44228": ("2021-12-24", "Known"),
    "CVE-2023-4911": ("2023-12-12", "Unknown"),
}
EPSS = {"CVE-2021-44228": 0.94358, "CVE-2023-4911": 0.71421, "CVE-2023-38545": 0.2541, "CVE-2024-3094": 0.85,
        "CVE-2023-45853": 0.01, "CVE-2024-0727": 0.0044, "CVE-2023-5678": 0.0032, "CVE-2024-25062": 0.0011}
#: Namespaces whose workloads the previous run did not have yet: their findings are new, not overdue.
NEW_NAMESPACES = ("search", "batch")
DAYS_BEFORE = 40


def write_feeds(out: Path, today: dt.date) -> None:
    released = (today - dt.timedelta(days=1)).isoformat()
    (out / "kev.json").write_text(json.dumps({
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": released.replace("-", "."),
        "dateReleased": f"{released}T14:00:00.000Z", "count": len(KEV),
        "vulnerabilities": [{"cveID": cve, "dueDate": due, "knownRansomwareCampaignUse": ransomware,
                             "vendorProject": "", "product": "", "dateAdded": "", "requiredAction": "Apply updates."}
                            for cve, (due, ransomware) in KEV.items()]}, indent=1))
    rows = [f"#model_version:v2025.03.14,score_date:{released}T00:00:00+0000", "cve,epss,percentile"]
    rows += [f"{cve},{score:.5f},{min(0.99999, score + 0.05):.5f}" for cve, score in EPSS.items()]
    (out / "epss.csv").write_text("\n".join(rows) + "\n")


def write_previous(out: Path, root: Path, today: dt.date) -> None:
    """The demo cluster as a run 40 days ago saw it, without the workloads of NEW_NAMESPACES."""
    from job import report, scan, snapshot
    from job.log import RunLog
    from job.report.summary import summary_doc
    from job.report.writer import json_bytes
    from job.settings import Settings

    settings = Settings(pods=str(root / "pods.json"), secscan_dir=str(root / "secscan"), cluster_name="demo")
    snap = snapshot.load_pod_list(root / "pods.json", settings)
    snap.pods = [p for p in snap.pods if p.namespace not in NEW_NAMESPACES]
    snap.taken_at = f"{today - dt.timedelta(days=DAYS_BEFORE)}T06:00:00Z"
    results = scan.scan(snap, settings, RunLog(stream=io.StringIO(), progress="never"))
    ctx = report.build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=settings)
    (out / "summary.json").write_bytes(json_bytes(summary_doc(ctx)))


def write_accepted(out: Path, today: dt.date) -> None:
    """exceptions.yaml, as an operator writes it, and vex/checkout-worker.json, as a supplier would."""
    def day(days: int) -> str:
        return (today + dt.timedelta(days=days)).isoformat()

    (out / "exceptions.yaml").write_text(f"""\
# Accepted risks (docs/exceptions.md): each entry needs a scope, reason, by and until.
exceptions:
  - package: zlib
    vulnerability: CVE-2023-45853
    reason: "minizip is not built into any image: zlib's inflate path only"
    by: security@example.com
    until: {day(120)}
    ticket: https://tickets.example.com/SEC-101
  - namespace: batch
    vulnerability: CVE-2023-5678
    reason: "batch jobs never parse untrusted DH parameters"
    by: batch-team@example.com
    until: {day(6)}
  - namespace: search
    vulnerability: CVE-2024-28085
    reason: "wall is not installed setuid; review at the next release"
    by: search-team@example.com
    until: {day(-3)}
""")
    (out / "vex").mkdir(exist_ok=True)
    (out / "vex" / "checkout-worker.json").write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://vex.example.com/checkout-worker/1",
        "author": "Checkout team <checkout-team@example.com>", "timestamp": f"{day(-10)}T09:00:00Z", "version": 1,
        "statements": [{
            "vulnerability": {"name": "CVE-2024-3094"},
            "products": [{"@id": "pkg:oci/worker?repository_url=registry.example.com:5000/checkout/worker",
                          "subcomponents": [{"@id": "pkg:deb/debian/xz-utils"}]}],
            "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
            "impact_statement": "sshd is not in the image: the backdoor's entry point is never loaded"}]}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/demo-inputs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    today = dt.datetime.now(dt.timezone.utc).date()
    write_feeds(args.out, today)
    write_previous(args.out, Path(__file__).resolve().parent, today)
    write_accepted(args.out, today)
    print(f"wrote {args.out}/kev.json, epss.csv, summary.json (a run of {DAYS_BEFORE} days ago), exceptions.yaml "
          f"and vex/")


if __name__ == "__main__":
    main()
