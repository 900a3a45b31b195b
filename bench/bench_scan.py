"""Benchmark of the registry part of the scan alone: CPU per answer and wall time against the
latency-bound ideal, at several concurrency settings (not a test).

    .venv/bin/python bench/bench_scan.py                        # 3,000 manifests at 8, 16, 32, 64
    .venv/bin/python bench/bench_scan.py --repeat 3 --before /tmp/before   # old code side by side
    .venv/bin/python bench/bench_scan.py --concurrency 32 --profile scan.prof.txt
    .venv/bin/python bench/bench_scan.py --concurrency 32,64 --repeat 2 --processes 2   # split by host
    .venv/bin/python bench/bench_scan_floor.py                  # what minimal clients reach here

The registry simulator is bench_play.py's (tests/integration/registry_sim.py in a process of its
own: --hosts Quay hosts over HTTPS, each answer delayed by --latency, serving bench/synth.py's
reports). Each scan runs in a fresh process, as the job would, calling job.registries.scan_manifests
with the manifests' requests. With --before, the same scans run with the job's code from that
checkout (e.g. a `git worktree` of an older commit) against the same simulator, interleaved with
this checkout's runs so that both sides see the same load on the machine.

Printed per side and concurrency: wall time (range over --repeat), the scanning process's CPU
time, CPU per answer, wall time / ideal (manifests / concurrency x latency), and each target met
or missed: wall <= 1.25 x ideal at concurrency 32 and 64, CPU <= 1.5 ms per answer.

--profile FILE samples the scanning process with py-spy (the thread holding the GIL: the one Python
thread that can run) at the first concurrency and writes the functions with the most samples, by own time and with callees (the
stacks themselves to FILE.collapsed, for flame graph tools).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO / "tests" / "integration", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_play  # noqa: E402 - the registry simulator's handle and helpers

WALL_TARGET = 1.25  # x the ideal, at the concurrencies below
WALL_TARGET_AT = (32, 64)
CPU_TARGET_MS = 1.5  # per answer


# --- one scan, in a process of its own ----------------------------------------------------------


def scan_child(spec_file: str) -> None:
    """The scan alone with the job's code from spec["repo"]."""
    spec = json.loads(Path(spec_file).read_text())
    sys.path.insert(0, spec["repo"])
    # Imported before the clock starts: a run pays for them once, not per answer.
    import job.registries.online  # noqa: F401
    from job.log import QuietLog
    from job.model import ImageRef, ScanRequest
    from job.registries import scan_manifests
    from job.settings import Settings

    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["settings"].items()})
    requests = [ScanRequest(ImageRef(*ref)) for ref in spec["refs"]]
    if spec.get("ready"):  # the profiler attaches, then says so
        print("ready", flush=True)
        sys.stdin.readline()
    wall0, cpu0, kernel0 = time.perf_counter(), time.process_time(), os.times().system
    results = scan_manifests(requests, settings, secrets=None, log=QuietLog(), vulnerable_only=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    Path(spec["result"]).write_text(json.dumps({
        "wall_s": wall, "cpu_s": cpu, "kernel_s": os.times().system - kernel0, "manifests": len(results),
        "states": dict(Counter(r.state.value for r in results.values()))}))


def run_split(repo: Path, refs: list, settings: dict[str, Any], workdir: Path, name: str,
              processes: int) -> dict[str, Any]:
    """The scan spread over `processes` scanning processes at once, the hosts dealt out among them and
    the concurrency shared: what worker processes split by host would give (the job scans in one).
    Wall time is the slowest process's, CPU time the sum."""
    hosts = sorted({ref[0] for ref in refs})
    share = {key: max(1, value // processes) for key, value in settings.items() if key == "registry_concurrency"}
    children = []
    for k in range(processes):
        mine = [ref for ref in refs if hosts.index(ref[0]) % processes == k]
        spec_file, result_file = workdir / f"{name}-{k}.spec.json", workdir / f"{name}-{k}.json"
        spec_file.write_text(json.dumps({"repo": str(repo), "refs": mine, "settings": settings | share,
                                         "result": str(result_file), "ready": False}))
        children.append((subprocess.Popen([sys.executable, __file__, "--scan-child", str(spec_file)], cwd=repo),
                         result_file))
    if any(child.wait() != 0 for child, _ in children):
        raise RuntimeError("a scanning process failed")
    parts = [json.loads(result_file.read_text()) for _, result_file in children]
    return {"wall_s": max(p["wall_s"] for p in parts), "cpu_s": sum(p["cpu_s"] for p in parts),
            "kernel_s": sum(p.get("kernel_s", 0.0) for p in parts),
            "manifests": sum(p["manifests"] for p in parts),
            "states": dict(sum((Counter(p["states"]) for p in parts), Counter()))}


def run_scan(repo: Path, refs: list, settings: dict[str, Any], workdir: Path, name: str,
             profile: Path | None = None, processes: int = 1) -> dict[str, Any]:
    if processes > 1:
        return run_split(repo, refs, settings, workdir, name, processes)
    spec_file, result_file = workdir / f"{name}.spec.json", workdir / f"{name}.json"
    spec_file.write_text(json.dumps({"repo": str(repo), "refs": refs, "settings": settings,
                                     "result": str(result_file), "ready": profile is not None}))
    command = [sys.executable, __file__, "--scan-child", str(spec_file)]
    if profile is None:
        subprocess.run(command, cwd=repo, check=True)
    else:
        raw = profile.with_name(profile.name + ".collapsed")
        child = subprocess.Popen(command, cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        child.stdout.readline()
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(child.pid),
                                "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking", "--gil"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # py-spy attached
        child.stdin.write("go\n")
        child.stdin.flush()
        if child.wait() != 0:
            raise RuntimeError(f"the scan exited with {child.returncode}")
        spy.wait(timeout=60)
        profile.write_text(summarise(raw.read_text(), repo))
    return json.loads(result_file.read_text())


def summarise(collapsed: str, repo: Path, top: int = 30) -> str:
    """py-spy's collapsed stacks ("frame;frame;... count" lines) as two tables: samples by own
    time and by time with callees, per function."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_short(f, repo) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples (py-spy --gil: the thread holding the GIL)", "", "own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "with callees:"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines) + "\n"


def _short(frame: str, repo: Path) -> str:
    """'func (path/file.py:12)' as 'func (file.py)': one line per function, not per line."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for prefix in (str(repo) + "/", "/usr/lib/python3.11/", "site-packages/"):
        if prefix in where:
            where = where.split(prefix, 1)[1]
    return f"{name} ({where})"


# --- the sweep ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", type=int, default=3_000)
    parser.add_argument("--vulns", type=int, default=64, help="vulnerabilities per manifest, roughly (as bench_play)")
    parser.add_argument("--latency", type=float, default=0.05, help="registry latency in seconds (default 0.05)")
    parser.add_argument("--hosts", type=int, default=8, help="simulated registry hosts (default 8)")
    parser.add_argument("--concurrency", default="8,16,32,64", help="--registry-concurrency values (comma-separated)")
    parser.add_argument("--registry-host-concurrency", type=int, default=8,
                        help="the job's setting, raised to concurrency / hosts where that is more (as bench_play)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side and concurrency (default 1)")
    parser.add_argument("--before", type=Path, help="a checkout of the old code to measure side by side")
    parser.add_argument("--profile", type=Path, help="write a py-spy profile summary of one scan to this file")
    parser.add_argument("--processes", type=int, default=1,
                        help="spread each scan over this many processes, the hosts dealt out among them and the "
                             "concurrency shared (what worker processes would give; the job scans in one)")
    parser.add_argument("--plain-http", action="store_true", help="registry over plain HTTP instead of HTTPS")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--scan-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan_child:
        scan_child(args.scan_child)
        return

    concurrencies = [int(x) for x in args.concurrency.split(",") if x.strip()]
    sides = [("after", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    workdir = Path(tempfile.mkdtemp(prefix="imvjob-bench-scan-"))
    # The simulator's reports do not depend on the pods: a small cluster builds faster.
    sim_args = argparse.Namespace(plain_http=args.plain_http, hosts=args.hosts, latency=args.latency,
                                  pods=1_000, manifests=args.manifests, vulns=args.vulns, seed=args.seed, churn=0.0,
                                  growth=0.0)
    registry = bench_play.Registry(sim_args, workdir)
    runs: list[dict[str, Any]] = []
    try:
        ready = registry.wait_ready()
        import synth

        cluster = synth.build(pods=1_000, manifests=args.manifests, vulns=args.vulns, hosts=args.hosts,
                              seed=args.seed)
        refs = [[registry.hosts[m.host], m.repository, m.digest] for m in cluster.manifests[:args.manifests]]
        bench_play.say(f"registry: {ready['reports']:,} reports, {bench_play.human_bytes(ready['bytes'])} on "
                       f"{len(registry.hosts)} hosts, {args.latency * 1000:.0f} ms latency")
        base = {"extra_certs": registry.ca,
                "insecure_registry": [f"http://{h}" for h in registry.hosts] if args.plain_http else []}
        if args.profile:
            c = concurrencies[0]
            registry.command("reset")
            r = run_scan(REPO, refs, base | _concurrency(c, args), workdir, f"profile-{c}", profile=args.profile)
            bench_play.say(f"  profile of a scan at concurrency {c} ({r['wall_s']:.1f} s) written to {args.profile}")
        for round_ in range(args.repeat):
            for c in concurrencies:
                # Alternate which side goes first, so that neither always meets a warmer machine.
                for side, repo in (sides if round_ % 2 == 0 else sides[::-1]):
                    registry.command("reset")
                    sim_cpu = process_cpu(registry.proc.pid)
                    r = run_scan(repo, refs, base | _concurrency(c, args), workdir, f"{side}-{c}-{round_}",
                                 processes=args.processes)
                    sim_cpu = process_cpu(registry.proc.pid) - sim_cpu
                    stats = registry.command("stats")
                    r.update(side=side, registry_cpu_s=sim_cpu, concurrency=c, round=round_, ideal_s=len(refs) / c * args.latency,
                             max_in_flight=stats["max_in_flight"],
                             requests=sum(h["security"] for h in stats["hosts"].values()))
                    runs.append(r)
                    bench_play.say(f"  {side:>6} at {c:>3}: {r['wall_s']:5.2f} s wall, {r['cpu_s']:5.2f} s CPU "
                                   f"({r.get('kernel_s', 0.0):4.2f} s of it in the kernel; the simulator {sim_cpu:5.2f} s)")
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(runs, sides, concurrencies, args)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _concurrency(c: int, args: argparse.Namespace) -> dict[str, int]:
    return {"registry_concurrency": c,
            "registry_host_concurrency": max(args.registry_host_concurrency, -(-c // args.hosts))}


def _range(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}-{format(hi, fmt)}"


def report(runs: list[dict[str, Any]], sides: list[tuple[str, Path]], concurrencies: list[int],
           args: argparse.Namespace) -> None:
    by: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by[r["side"], r["concurrency"]].append(r)
    spread = f", each scan spread over {args.processes} processes" if args.processes > 1 else ""
    print(f"\nthe registry part of the scan alone ({args.manifests:,} manifests, {args.latency * 1000:.0f} ms, "
          f"{args.hosts} hosts{spread}, {args.repeat} run(s) each; ranges are min-max):")
    print(f"  {'side':<7}{'conc':>5}{'wall s':>13}{'CPU s':>13}{'CPU/answer ms':>16}{'wall/ideal':>13}"
          f"{'sim CPU s':>11}{'in flight':>11}  targets")
    checks = []
    for side, _ in sides:
        for c in concurrencies:
            rs = by[side, c]
            if not rs:
                continue
            per = [1000 * r["cpu_s"] / r["requests"] for r in rs]
            ratio = [r["wall_s"] / r["ideal_s"] for r in rs]
            marks = [f"CPU {'met' if max(per) <= CPU_TARGET_MS else 'MISSED'}"]
            if c in WALL_TARGET_AT:
                marks.append(f"wall {'met' if max(ratio) <= WALL_TARGET else 'MISSED'}")
            checks.append({"side": side, "concurrency": c, "cpu_ms_per_answer": per, "wall_over_ideal": ratio})
            print(f"  {side:<7}{c:>5}{_range([r['wall_s'] for r in rs], '.2f'):>13}"
                  f"{_range([r['cpu_s'] for r in rs], '.2f'):>13}{_range(per, '.2f'):>16}{_range(ratio, '.2f'):>13}"
                  f"{_range([r['registry_cpu_s'] for r in rs], '.1f'):>11}{max(r['max_in_flight'] for r in rs):>11}"
                  f"  {', '.join(marks)}")
    if len(sides) == 2 and runs:
        print("\n  after / before (medians):")
        for c in concurrencies:
            def median(side: str, key: str) -> float:
                values = sorted(r[key] for r in by[side, c])
                return values[len(values) // 2]
            print(f"  {c:>5}: wall {median('after', 'wall_s') / median('before', 'wall_s'):.2f}x, "
                  f"CPU {median('after', 'cpu_s') / median('before', 'cpu_s'):.2f}x")
    print(f"\n  targets: CPU <= {CPU_TARGET_MS} ms per answer; wall <= {WALL_TARGET} x ideal at concurrency "
          f"{' and '.join(map(str, WALL_TARGET_AT))} (ideal = manifests / concurrency x latency); "
          f"load average at the end {bench_play.loadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "checks": checks, "parameters": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "scan_child"}}, indent=1))


if __name__ == "__main__":
    main()
