"""Benchmark of the report stage on a synthetic large cluster (not a test).

    .venv/bin/python bench/bench_reports.py              # 50,000 pods, 3,000 images, 200,000 rows
    .venv/bin/python bench/bench_reports.py --scale 0.1  # a tenth of that
    .venv/bin/python bench/bench_reports.py --tree /tmp/before   # another checkout's job/, same script

Each step runs in a process of its own, so that each peak memory figure (ru_maxrss) is that step's:
the synthetic cluster is built first in every process and frozen out of the collector's way
(gc.freeze, as the play does after its snapshot and scan stages), then the context (previous run
read, findings ranked), then the step:
- context: nothing more (what the context alone holds and costs);
- stage: the whole report stage as the job runs it, job.report.write_reports (the HTML pages, the
  workbook, summary.json), after the context; what a change to any renderer shows up in;
- pages: the HTML pages alone (report.html, and on a large cluster the owners' pages);
- xlsx, json: the workbook alone, summary.json alone.
Then the pages' sizes, and the index page's first paint in headless Chromium (through the DevTools
protocol, tests/integration/report/cdp.py). The run before is simulated, so new/resolved are computed.
Every figure is printed with the target it is held to and whether it is met.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("context", "stage", "pages", "xlsx", "json")
KINDS = ("Deployment", "Deployment", "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod")
WEIGHTS = (1, 3, 12, 30, 30, 18, 6)  # Defcon1 … Unknown, rough shares of real reports (reversed below)
MB = 1e6
#: Issue 13 and 14's targets (the play's peak memory is bench_play.py's; this process holds what the
#: play holds at the report stage: the cluster's pods and scan results, then the context).
INDEX_BYTES, OWNER_BYTES, FIRST_PAINT_MS, PLAY_PEAK_MB = 1 * MB, 2 * MB, 1000, 350


def synthesise(pods: int, images: int, rows: int, *, seed: int, taken_at: str, drift: float = 0.0):
    """A cluster: pods spread over namespaces and workloads, images sharing a pool of vulnerabilities.

    drift: share of images whose last vulnerability is replaced (what changes between two runs).
    """
    from job.model import (SEVERITIES, Container, ContainerKind, Feature, ImageRef, Namespace, Pod, ScanResult,
                           ScanState, Snapshot, Vulnerability, VulnReport, Workload)

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


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(step: str, args: argparse.Namespace, out: Path) -> dict:
    """One step in this process: the cluster, the context, then the step's rendering."""
    from job.report import build_context, load_previous
    from job.report.summary import summary_doc
    from job.report.writer import _write_pages, json_bytes, write_reports
    from job.report.xlsx import write_xlsx
    from job.settings import Settings

    t0 = time.perf_counter()
    snapshot, results = synthesise(args.pods, args.images, args.rows, seed=1, taken_at="2026-05-04T06:00:00Z",
                                   drift=0.05)
    gc.freeze()
    timings = {"model": time.perf_counter() - t0, "before_mb": _rss_mb()}
    t0 = time.perf_counter()
    previous = load_previous(out / "previous.json", current=snapshot)
    ctx = build_context(snapshot=snapshot, results=results, outcome=None, previous=previous,
                        settings=Settings(cluster_name="bench"))
    del previous  # as in the pipeline: the context keeps what it needs of it
    timings["context"] = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    if step == "stage":
        write_reports(ctx, out)
    elif step == "pages":
        _write_pages(ctx, out)
    elif step == "xlsx":
        write_xlsx(ctx, dest=out / "report.xlsx")
    elif step == "json":
        (out / "summary.json").write_bytes(json_bytes(summary_doc(ctx)))
    timings["render"] = time.perf_counter() - t1
    timings["wall"] = time.perf_counter() - t0 if step in ("context", "stage") else timings["render"]
    timings["cpu"] = time.process_time() - c1  # of the rendering
    timings.update(entries=ctx.entries, new=ctx.changes.new_counts.total, resolved=ctx.changes.resolved_counts.total)
    timings["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def write_previous(args: argparse.Namespace, out: Path) -> None:
    """The run before: the same cluster a day earlier, without the drift."""
    from job.report import build_context
    from job.report.summary import summary_doc
    from job.report.writer import json_bytes
    from job.settings import Settings

    snapshot, results = synthesise(args.pods, args.images, args.rows, seed=1, taken_at="2026-05-03T06:00:00Z")
    ctx = build_context(snapshot=snapshot, results=results, outcome=None, previous=None,
                        settings=Settings(cluster_name="bench"))
    (out / "previous.json").write_bytes(json_bytes(summary_doc(ctx)))


def first_paint_ms(html: Path, tmp: Path, *, times: int = 3) -> float | None:
    """The page's first contentful paint in headless Chromium, the median of `times` fresh loads."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.integration.report.cdp import Page

    paints = []
    for _ in range(times):
        with Page(chromium, html.resolve().as_uri(), tmp, width=1440, height=900) as page:
            # The paint entry comes after the load the page waited for: wait for it to be recorded.
            paints.append(page.js("new Promise(done => new PerformanceObserver(list => done(list.getEntries()"
                                  ".find(e => e.name === 'first-contentful-paint').startTime))"
                                  ".observe({type: 'paint', buffered: true}))"))
    return statistics.median(paints)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def run_step(step: str, args: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--out", str(out), "--pods", str(args.pods),
           "--images", str(args.images), "--rows", str(args.rows)]
    if args.tree:
        cmd += ["--tree", str(args.tree)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes (default 1: the full size)")
    parser.add_argument("--out", type=Path, help="keep the rendered files in this folder")
    parser.add_argument("--tree", type=Path, help="measure the job/ of this checkout (default: this one's)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"which steps (default {','.join(STEPS)})")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--pods", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.pods = args.pods or int(50_000 * args.scale)
    args.images = args.images or max(int(3_000 * args.scale), 1)
    args.rows = args.rows or int(200_000 * args.scale)
    tree = (args.tree or REPO).resolve()
    sys.path.insert(0, str(tree))  # the job package measured

    if args.child:
        print(json.dumps(child(args.child, args, args.out)))
        return

    with tempfile.TemporaryDirectory(prefix="imvjob-bench-") as tmp:
        out = args.out or Path(tmp) / "out"
        out.mkdir(parents=True, exist_ok=True)
        print(f"{args.pods:,} pods, {args.images:,} images, {args.rows:,} vulnerability rows; job/ of {tree}; "
              f"files in {out}")
        t0 = time.perf_counter()
        write_previous(args, out)
        print(f"  (previous run synthesised in {time.perf_counter() - t0:.1f} s)")
        print(f"  {'step':<7} {'wall s':>7} {'context s':>10} {'render s':>9} {'render cpu s':>13} "
              f"{'RSS before MB':>14} {'peak MB':>8} {'added MB':>9}")
        figures: dict = {"pods": args.pods, "images": args.images, "rows": args.rows, "tree": str(tree)}
        for step in [s for s in args.steps.split(",") if s]:
            r = run_step(step, args, out)
            figures[step] = r
            print(f"  {step:<7} {r['wall']:>7.1f} {r['context']:>10.1f} {r['render']:>9.1f} {r['cpu']:>13.1f} "
                  f"{r['before_mb']:>14.0f} {r['peak_mb']:>8.0f} {r['peak_mb'] - r['before_mb']:>9.0f}")
        print(f"  context: {r['entries']:,} vulnerability entries, {r['new']:,} new, {r['resolved']:,} resolved")
        index = out / "report.html"
        if not index.is_file():  # no step wrote the pages
            if args.json:
                args.json.write_text(json.dumps(figures, indent=1))
            return
        owners = sorted((out / "owners").glob("*.html")) if (out / "owners").is_dir() else []
        largest = max(owners, key=lambda p: p.stat().st_size, default=None)
        sizes = [p.stat().st_size for p in owners]
        figures["sizes"] = {"index": index.stat().st_size, "owner_pages": len(owners),
                            "owner_max": max(sizes, default=0), "owner_total": sum(sizes)}
        paint = first_paint_ms(index, Path(tmp))
        figures["first_paint_ms"] = paint
        s = figures["sizes"]
        print(f"  index page {s['index'] / MB:.2f} MB (target < 1 MB: {verdict(s['index'] < INDEX_BYTES)}); "
              f"first paint {'n/a (no chromium)' if paint is None else f'{paint:.0f} ms'} "
              f"(target < {FIRST_PAINT_MS} ms: {verdict(paint is not None and paint < FIRST_PAINT_MS)})")
        if owners:
            print(f"  {len(owners)} owner pages, {s['owner_total'] / MB:.0f} MB in all, the largest "
                  f"{s['owner_max'] / MB:.2f} MB ({largest.name}; target < 2 MB each: "
                  f"{verdict(s['owner_max'] < OWNER_BYTES)})")
        if "stage" in figures:
            st = figures["stage"]
            print(f"  report stage: {st['wall']:.1f} s (context {st['context']:.1f} s + pages, workbook and "
                  f"summary {st['render']:.1f} s); peak {st['peak_mb']:.0f} MB in this process "
                  f"(target for the whole play ≤ {PLAY_PEAK_MB} MB: {verdict(st['peak_mb'] <= PLAY_PEAK_MB)}); "
                  f"compare the wall time with --tree <checkout of the code before>, in the same time window")
        if "pages" in figures and "stage" in figures:
            share = figures["pages"]["render"] / max(figures["stage"]["wall"], 1e-9)
            print(f"  the HTML pages: {figures['pages']['render']:.1f} s, {share:.0%} of the report stage")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
