"""Peak memory of a scan against a registry that answers every manifest with a big valid report.

    python tests/integration/registry_peak_rss.py --manifests 24 --mib 60 --shape packages [--set registry_memory_mb=192]

The simulator runs in this process; the scan runs in a child process (the job's code from the
checkout this file is in, or --repo), which reports its own peak RSS. Shapes: `packages` (a
Quay answer listing many packages, as a large image's), `string` (one advisory with a huge
description).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from registry_sim import QuayRole, SimHost, digest  # noqa: E402

CHILD = """
import json, resource, sys, time
from job.log import QuietLog
from job.model import ImageRef, ScanRequest
from job.registries import scan_manifests
from job.settings import Settings
host, count, changes = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
refs = [ImageRef(host, "org/app", d) for d in json.loads(sys.argv[4])]
settings = Settings(insecure_registry=("http://" + host,), global_pull_secret="", read_timeout=120.0, **changes)
started = time.monotonic()
results = scan_manifests([ScanRequest(r) for r in refs], settings, secrets=None, log=QuietLog())
states = {}
for r in results.values():
    states[r.state.value] = states.get(r.state.value, 0) + 1
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": round(time.monotonic() - started, 1), "states": states,
                  "details": sorted({r.detail for r in results.values() if r.detail})[:3]}))
"""


def report(mib: int, shape: str) -> bytes:
    size = mib * 1024 * 1024
    if shape == "string":
        vuln = {"Name": "CVE-2024-1", "Severity": "High", "Description": "x" * size, "FixedBy": "2"}
        features = [{"Name": "openssl", "Version": "1", "Vulnerabilities": [vuln]}]
    else:
        one = {"Name": "pkg", "Version": "1.0-1", "VersionFormat": "dpkg", "NamespaceName": "debian:12",
               "AddedBy": "sha256:" + "0" * 64, "Vulnerabilities": []}
        features = [dict(one, Name=f"pkg{i}") for i in range(size // (len(json.dumps(one)) + 4))]
    return json.dumps({"status": "scanned", "data": {"Layer": {"Name": "x", "Features": features}}}).encode()


def measure(*, manifests: int, mib: int, shape: str, changes: dict, repo: Path) -> dict:
    sim = SimHost().start()
    try:
        role = QuayRole(sim)
        body = report(mib, shape)
        digests = [digest(shape, i) for i in range(manifests)]
        for d in digests:
            role.reports[d] = body
        out = subprocess.run([sys.executable, "-c", CHILD, sim.host, str(manifests), json.dumps(changes),
                              json.dumps(digests)], cwd=repo, capture_output=True, text=True, timeout=900)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        return {"answer_mib": round(len(body) / 2**20, 1), **json.loads(out.stdout.strip().splitlines()[-1])}
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifests", type=int, default=24)
    parser.add_argument("--mib", type=int, default=60)
    parser.add_argument("--shape", choices=("packages", "string"), default="packages")
    parser.add_argument("--repo", type=Path, default=HERE.parents[1])
    parser.add_argument("--set", action="append", default=[], help="a setting, e.g. registry_memory_mb=192")
    args = parser.parse_args()
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key] = json.loads(value)
    print(json.dumps(measure(manifests=args.manifests, mib=args.mib, shape=args.shape, changes=changes,
                             repo=args.repo)))


if __name__ == "__main__":
    main()
