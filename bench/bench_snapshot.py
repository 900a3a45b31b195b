"""Benchmark of the snapshot stage alone: one synthetic cluster, two checkouts of the job timed
side by side against it (not a test).

    .venv/bin/python bench/bench_snapshot.py --pods 10000 --before /tmp/before   # a worktree of the old code
    .venv/bin/python bench/bench_snapshot.py --pods 50000 --manifests 3000 --rounds 3 --before /tmp/before

What it does:
1. starts etcd + kube-apiserver on loopback (tests/integration/controlplane.py) and fills them once
   as `bench/bench_play.py` does (namespaces, ReplicaSets and Jobs, Running pods; no registry:
   the snapshot does not ask one);
2. runs the live snapshot stage (`job.pipeline.stage_snapshot`) in a fresh process per run, as a
   CronJob starts the job, alternating between the checkouts round by round so that both meet
   the same load on a shared machine;
3. prints, per checkout, the median wall time, CPU time and time in garbage collections of the
   stage, the CPU the API server and etcd spent meanwhile, the process's peak RSS, and where the
   wall time went: parsing pods (`SnapshotBuilder.add`), listing owners (`list_metadata` and
   `owner_index`), the rest (waiting for pages of pods, namespaces), and the ratios of this
   checkout to the other.

`--hold` fills a cluster and keeps it up; `--kubeconfig` times against such a held cluster, so
that several comparisons need one fill.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def child(root: str, spec_file: str) -> None:
    """One snapshot stage, timed; figures as JSON on stdout. Runs the code of checkout `root`."""
    sys.path.insert(0, root)
    spec = json.loads(Path(spec_file).read_text())
    from job import kube, pipeline, snapshot
    from job.log import RunLog
    from job.settings import Settings

    assert Path(snapshot.__file__).resolve().is_relative_to(Path(root).resolve()), snapshot.__file__
    spent: dict[str, float] = {"parse_s": 0.0, "owners_s": 0.0, "gc_s": 0.0}

    def timed(name: str, func: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    # Instrumentation only, at seams both checkouts have.
    snapshot.SnapshotBuilder.add = timed("parse_s", snapshot.SnapshotBuilder.add)
    kube.Kube.list_metadata = timed("owners_s", kube.Kube.list_metadata)
    snapshot.owner_index = timed("owners_s", snapshot.owner_index)
    gc_start = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            spent["gc_s"] += time.perf_counter() - gc_start[0]

    gc.callbacks.append(on_gc)
    settings = Settings(kubeconfig=spec["kubeconfig"], cluster_name="bench", progress="never",
                        page_size=spec["page_size"])
    client = kube.connect(settings)
    with open("/dev/null", "w", encoding="utf-8") as devnull:
        log = RunLog(stream=devnull, progress="never")
        wall0, cpu0 = time.perf_counter(), time.process_time()
        snap = pipeline.stage_snapshot(settings, log, client)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, **spent, "peak_rss_mb": peak_mb, "pods": len(snap.pods), "pages": snap.pages,
                      "manifests": len(snap.refs()), "problems": len(snap.problems),
                      "requests": dict(client.stats),
                      "workloads": len({(p.namespace, p.workload) for p in snap.pods})}))


def server_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes (the API server and etcd), from /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def run_child(root: Path, spec_file: Path, pids: list[int]) -> dict[str, Any]:
    before = server_cpu(pids)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(root.resolve()),
                          str(spec_file)], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if out.returncode:
        raise SystemExit(f"the snapshot of {root} failed:\n{out.stderr[-3000:]}")
    after = server_cpu(pids)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = after - before
    result["rest_s"] = result["wall_s"] - result["parse_s"] - result["owners_s"]
    return result


FIGURES = ("wall_s", "cpu_s", "gc_s", "parse_s", "owners_s", "rest_s", "server_cpu_s", "peak_rss_mb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--manifests", type=int, default=600)
    parser.add_argument("--page-size", type=int, default=500, help="the job's setting (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each checkout (default 3)")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare against (required)")
    parser.add_argument("--after", type=Path, default=REPO, help="the checkout measured (default: this one)")
    parser.add_argument("--loaders", type=int, default=16, help="connections filling the cluster (16)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--hold", action="store_true",
                        help="fill the cluster, print its kubeconfig and keep it up until interrupted, for "
                             "--kubeconfig runs")
    parser.add_argument("--kubeconfig", type=Path, help="time against this (held) cluster instead of filling one")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if not args.before and not args.hold:
        parser.error("--before is required")
    for path in (REPO, REPO / "tests" / "integration", HERE):
        sys.path.insert(0, str(path))
    from bench_play import loadavg

    cp = None
    try:
        if args.kubeconfig:
            kubeconfig = args.kubeconfig
            pids = json.loads(Path(f"{kubeconfig}.pids").read_text())
        else:
            cp = fill(args)
            kubeconfig = cp.kubeconfig
            pids = [proc.pid for proc in cp._procs.values()]
        if args.hold:
            # Stopped by SIGTERM as by Ctrl-C: the control plane is stopped and its folder removed.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            Path(f"{kubeconfig}.pids").write_text(json.dumps(pids))
            print(f"cluster held; time against it with --kubeconfig {kubeconfig}", flush=True)
            while True:
                time.sleep(3600)
        with tempfile.TemporaryDirectory() as tmp:
            spec_file = Path(tmp) / "spec.json"
            spec_file.write_text(json.dumps({"kubeconfig": str(kubeconfig), "page_size": args.page_size}))
            load_start = loadavg()
            runs = rounds(args, spec_file, pids)
    except KeyboardInterrupt:
        return
    finally:
        if cp is not None:
            cp.stop()
    report(args, runs, load_start, loadavg())


def fill(args: argparse.Namespace) -> Any:
    import synth
    from bench_play import Loader, populate, say
    from controlplane import ControlPlane, find_binaries

    cluster = synth.build(pods=args.pods, manifests=args.manifests, seed=args.seed)
    hosts = [f"registry-{n}.bench.example:8443" for n in range(8)]
    cp = ControlPlane.start(find_binaries())  # etcd's default quota: pods alone stay well within it
    try:
        filled = populate(cp, cluster, hosts, Loader(cp, args.loaders))
    except BaseException:
        cp.stop()
        raise
    say(f"  cluster filled in {filled['seconds']:.0f} s")
    return cp


def rounds(args: argparse.Namespace, spec_file: Path, pids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """The checkouts one after the other, the order swapped every round."""
    from bench_play import say

    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for n in range(args.rounds):
        for side in (("before", "after") if n % 2 == 0 else ("after", "before")):
            result = run_child(getattr(args, side), spec_file, pids)
            runs[side].append(result)
            say(f"  round {n + 1} {side}: " + ", ".join(f"{k} {result[k]:.2f}" for k in FIGURES))
    return runs


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], load_start: Any, load_end: Any) -> None:
    first = {side: runs[side][0] for side in runs}
    same = all(first["before"][k] == first["after"][k] for k in ("pods", "pages", "manifests", "workloads"))
    print(f"\n{first['after']['pods']:,} pods, {first['after']['pages']} pages of {args.page_size}; load average "
          f"{load_start} at the start, {load_end} at the end; medians of {args.rounds} runs each")
    print(f"{'':>14} {'before':>8} {'after':>8} {'after/before':>13}")
    medians = {side: {k: statistics.median(r[k] for r in runs[side]) for k in FIGURES} for side in runs}
    for k in FIGURES:
        b, a = medians["before"][k], medians["after"][k]
        print(f"{k:>14} {b:8.2f} {a:8.2f} {a / b if b else float('nan'):13.2f}")
    print(f"same snapshot (pods, pages, manifests, workloads): {same}")
    if args.json:
        args.json.write_text(json.dumps({"parameters": {k: str(v) for k, v in vars(args).items()},
                                         "runs": runs, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
