"""Benchmark of the report renderers on a synthetic large cluster (not a test).

    .venv/bin/python bench/bench_reports.py              # 50,000 pods, 3,000 images, 200,000 rows
    .venv/bin/python bench/bench_reports.py --scale 0.1  # a tenth of that

Each format is rendered in its own process, so that each peak memory figure (ru_maxrss) is that
format's: the synthetic model and the report context are built in every process and measured
alone first ("model" and "context"). The run before is simulated, so new/resolved are computed.
Target: XLSX + HTML under 60 s together, every process under 500 MB.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from job.model import (SEVERITIES, Container, ContainerKind, Feature, ImageRef, Namespace, Pod,  # noqa: E402
                       ScanResult, ScanState, Snapshot, Vulnerability, VulnReport, Workload)
from job.settings import Settings  # noqa: E402

FORMATS = ("model", "context", "html", "xlsx", "json")
KINDS = ("Deployment", "Deployment", "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod")
WEIGHTS = (1, 3, 12, 30, 30, 18, 6)  # Defcon1 … Unknown, rough shares of real reports (reversed below)


def synthesise(pods: int, images: int, rows: int, *, seed: int, taken_at: str, drift: float = 0.0):
    """A cluster: pods spread over namespaces and workloads, images sharing a pool of vulnerabilities.

    drift: share of images whose last vulnerability is replaced (what changes between two runs).
    """
    rnd = random.Random(seed)
    changes = random.Random(seed + 1)  # its own stream: the drift must not reshuffle the cluster
    pool_size = max(rows // 10, 10)
    severities = list(reversed(SEVERITIES))
    pool = []
    for i in range(pool_size):
        name = f"CVE-{2015 + i % 10}-{10000 + i}"
        pool.append(Vulnerability(
            name=name, severity=rnd.choices(severities, WEIGHTS)[0], namespace_name="rhel:9",
            description=f"{name}: a flaw in the parsing of crafted input may allow a remote attacker to cause a "
                        f"denial of service or execute code. " * 3,
            link=f"https://access.redhat.com/security/cve/{name} https://nvd.nist.gov/vuln/detail/{name}",
            fixed_by=f"{rnd.randint(1, 9)}.{rnd.randint(0, 20)}.{rnd.randint(0, 9)}" if rnd.random() < 0.7 else "",
            cvss_score=round(rnd.uniform(1, 10), 1)))
    packages = [f"pkg-{i}" for i in range(2000)]
    per_image = rows // images
    refs, results = [], {}
    for i in range(images):
        host = ("quay.io", "registry.local:5000", "docker.io")[i % 3]
        ref = ImageRef(host, f"team{i % 40}/app{i}", "sha256:" + f"{rnd.getrandbits(256):064x}")
        refs.append(ref)
        roll = rnd.random()
        if roll < 0.02:
            results[ref] = ScanResult(ref, ScanState.QUEUED, detail="queued for scanning", backend="quay")
            continue
        if roll < 0.03:
            results[ref] = ScanResult(ref, ScanState.UNREACHABLE, detail="connection refused after 4 retries",
                                      backend="quay")
            continue
        features = []
        left = per_image + (1 if i < rows % images else 0)
        start = rnd.randrange(pool_size)
        while left > 0:
            n = min(left, rnd.randint(1, 6))
            vulns = tuple(pool[(start + k * 7919 + len(features) * 104729) % pool_size] for k in range(n))
            if drift and changes.random() < drift:
                vulns = vulns[:-1] + (pool[changes.randrange(pool_size)],)
            features.append(Feature(name=rnd.choice(packages), version=f"1.{rnd.randint(0, 9)}.{rnd.randint(0, 9)}",
                                    vulnerabilities=vulns))
            left -= n
        results[ref] = ScanResult(ref, ScanState.SCANNED, VulnReport("rhel:9", tuple(features)), backend="quay",
                                  page_url=f"https://{host}/repository/{ref.repository}/manifest/{ref.digest}"
                                           f"?tab=vulnerabilities")
    namespaces = [f"team-{i:03d}" for i in range(max(pods // 125, 1))]
    pod_list = []
    workloads = max(pods // 5, 1)
    for w in range(workloads):
        ns = namespaces[w % len(namespaces)]
        kind = KINDS[w % len(KINDS)]
        images_of_workload = [refs[int(len(refs) * rnd.random() ** 1.5)] for _ in range(1 + (w % 3 == 0))]
        replicas = pods // workloads + (1 if w < pods % workloads else 0)
        for r in range(replicas):
            containers = tuple(
                Container(name=f"c{k}", kind=ContainerKind.CONTAINER, image=f"{ref.image}:v1",
                          container_id=f"cri-o://{w:08x}{r:04x}{k:02x}", ref=ref if rnd.random() > 0.005 else None,
                          problem="")
                for k, ref in enumerate(images_of_workload))
            pod_list.append(Pod(ns, f"app{w}-{r}", f"uid-{w}-{r}", Workload(kind, f"app{w}"), "default", (),
                                containers))
    ns_objects = {ns: Namespace(ns, {}, {"imvjob/notify": f"{ns}@example.com"}) for ns in namespaces}
    snapshot = Snapshot(taken_at=taken_at, cluster="bench", pods=pod_list, namespaces=ns_objects, problems=[],
                        source="bench")
    return snapshot, results


def child(fmt: str, args: argparse.Namespace, out: Path) -> dict:
    from job.report import build_context, load_previous
    from job.report.html import render_html
    from job.report.summary import summary_doc
    from job.report.writer import json_bytes
    from job.report.xlsx import write_xlsx

    t0 = time.perf_counter()
    snapshot, results = synthesise(args.pods, args.images, args.rows, seed=1, taken_at="2026-05-04T06:00:00Z",
                                   drift=0.05)
    timings = {"model": time.perf_counter() - t0}
    if fmt != "model":
        t0 = time.perf_counter()
        previous = load_previous(out / "previous.json", current=snapshot)
        ctx = build_context(snapshot=snapshot, results=results, outcome=None, previous=previous,
                            settings=Settings(cluster_name="bench"))
        del previous  # as in the pipeline: the context keeps what it needs of it
        timings["context"] = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        if fmt == "html":
            data = render_html(ctx).encode("utf-8")
            (out / "report.html").write_bytes(data)
        elif fmt == "xlsx":
            write_xlsx(ctx, dest=out / "report.xlsx")
        elif fmt == "json":
            (out / "summary.json").write_bytes(json_bytes(summary_doc(ctx)))
        if fmt != "context":
            timings[fmt] = time.perf_counter() - t0
            timings["cpu"] = time.process_time() - c0
        timings["entries"] = ctx.entries
        timings["new"] = ctx.changes.new_counts.total
        timings["resolved"] = ctx.changes.resolved_counts.total
    timings["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def write_previous(args: argparse.Namespace, out: Path) -> None:
    """The run before: the same cluster a day earlier, without the drift."""
    from job.report import build_context
    from job.report.summary import summary_doc
    from job.report.writer import json_bytes

    snapshot, results = synthesise(args.pods, args.images, args.rows, seed=1, taken_at="2026-05-03T06:00:00Z")
    ctx = build_context(snapshot=snapshot, results=results, outcome=None, previous=None,
                        settings=Settings(cluster_name="bench"))
    (out / "previous.json").write_bytes(json_bytes(summary_doc(ctx)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes (default 1: the full size)")
    parser.add_argument("--out", type=Path, help="keep the rendered files in this folder")
    parser.add_argument("--child", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--pods", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.pods = args.pods or int(50_000 * args.scale)
    args.images = args.images or max(int(3_000 * args.scale), 1)
    args.rows = args.rows or int(200_000 * args.scale)

    if args.child:
        print(json.dumps(child(args.child, args, args.out)))
        return

    with tempfile.TemporaryDirectory(prefix="imvjob-bench-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"{args.pods:,} pods, {args.images:,} images, {args.rows:,} vulnerability rows; files in {out}")
        t0 = time.perf_counter()
        write_previous(args, out)
        print(f"  (previous run synthesised in {time.perf_counter() - t0:.1f} s)")
        print(f"  {'step':<8} {'wall s':>8} {'cpu s':>7} {'+model s':>9} {'+context s':>11} {'peak MB':>9}  output")
        total = 0.0
        for fmt in FORMATS:
            cmd = [sys.executable, __file__, "--child", fmt, "--out", str(out), "--pods", str(args.pods),
                   "--images", str(args.images), "--rows", str(args.rows)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            own = r.get(fmt, r.get("context", r["model"]))
            if fmt in ("html", "xlsx"):
                total += own
            file = {"html": "report.html", "xlsx": "report.xlsx", "json": "summary.json"}.get(fmt)
            size = f"{(out / file).stat().st_size / 1e6:.1f} MB" if file else ""
            extra = f" entries={r['entries']:,} new={r['new']:,} resolved={r['resolved']:,}" if fmt == "context" else ""
            cpu = f"{r['cpu']:.1f}" if "cpu" in r else ""
            print(f"  {fmt:<8} {own:>8.1f} {cpu:>7} {r['model']:>9.1f} {r.get('context', 0):>11.1f} "
                  f"{r['peak_mb']:>9.0f}  "
                  f"{size}{extra}")
        print(f"  HTML + XLSX rendering: {total:.1f} s (target: under 60 s)")


if __name__ == "__main__":
    main()
