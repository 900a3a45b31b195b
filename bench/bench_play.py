"""Benchmark of the whole play on a synthetic cluster in a real control plane (not a test).

    make bench          # 50,000 pods, 3,000 manifests: the figures of BENCHMARKS.md
    make bench-small    # 1,000 pods, 100 manifests, in under a minute (targets that depend on scale: shown only)
    .venv/bin/python bench/bench_play.py --pods 10000 --manifests 600 --latency 0.05 --json out.json

What it does:
1. starts etcd + kube-apiserver on loopback (tests/integration/controlplane.py) with the project's
   CRD, and a registry simulator (tests/integration/registry_sim.py) in a process of its own:
   several Quay hosts over HTTPS, each answer delayed by --latency;
2. fills the cluster (bench/synth.py): namespaces, their ServiceAccounts, ReplicaSets and Jobs
   owning the pods, and the pods, each created and then made Running through pods/status, in
   bulk over a pool of keep-alive connections;
3. measures the snapshot parse against the kubernetes client's model classes on the same pages;
4. runs the play four times, each in a fresh process as a CronJob would, calling the pipeline's
   stage functions one by one: on the new cluster, again on the unchanged cluster, after a
   rollout moved 5 % of the pods to new image versions, and a frequent run (--no-reports, with
   the scan cache the runs before it left) after 1 % of new pods, some on new manifests. Per
   stage: wall time, CPU time, peak RSS, API requests by verb, bytes sent to the API server,
   registry requests. After the first run, the objects are listed to count their bytes;
5. with --baseline DIR (a checkout of the code before, e.g. `git worktree add /tmp/base 6c0c6f0`),
   runs that code's unchanged run too, on the same cluster right after ours, for before/after
   columns and ratios; every run starts once the control plane is quiet (settle());
6. times the registry part of the scan alone at several concurrencies (CPU per answer);
7. checks the figures the issue asks for and prints them (and --json FILE).

etcd runs with its default quota (2 GiB) unless --etcd-quota-gb raises it: "within quota" is
one of the checks.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import importlib
import json
import math
import os
import platform
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The job's code a play child imports: this checkout, or --baseline's (set for that child only).
CODE = Path(os.environ.get("IMVJOB_BENCH_CODE") or REPO)
for path in (CODE, REPO / "tests" / "integration", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import synth  # noqa: E402

WRITE_VERBS = ("create", "update", "update-status", "patch", "delete")
STAGES = ("snapshot", "scan", "apply", "files", "report", "notify")
ETCD_DEFAULT_QUOTA = 2 * 1024 ** 3
SMALL = dict(pods=1_000, manifests=100)
MB = 1024 * 1024


# --- memory and CPU of this process ---------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        found = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.MULTILINE)
    return int(found.group(1)) if found else 0


class PeakRss:
    """Peak RSS per stage: the kernel's high-water mark (VmHWM), reset before each stage through
    /proc/self/clear_refs; where that is refused, a sampler thread (every 20 ms) stands in."""

    def __init__(self) -> None:
        self._sampled = 0
        self._stop = threading.Event()
        self.exact = self._reset_hwm()
        if not self.exact:
            threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._sampled = max(self._sampled, _status_kb("VmRSS"))

    def reset(self) -> None:
        if self.exact:
            self._reset_hwm()
        self._sampled = _status_kb("VmRSS")

    def peak_kb(self) -> int:
        return _status_kb("VmHWM") if self.exact else max(self._sampled, _status_kb("VmRSS"))


# --- the play, in a process of its own ----------------------------------------------------------


def play_child(spec_file: str) -> None:
    """One run of the play, stage by stage, as pipeline.run_play wires them; figures to a JSON file."""
    spec = json.loads(Path(spec_file).read_text())
    import job
    from job import kube, notify, pipeline
    from job.log import RunLog
    from job.report import writer
    from job.settings import Settings

    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["settings"].items()})
    log_file = open(spec["log"], "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
    log = RunLog(stream=log_file, progress="never")
    peak = PeakRss()
    render: dict[str, float] = {}

    def timed(name: str, func: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                render[name] = render.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    # Instrumentation only: the renderers are timed where report.write_reports calls them.
    writer.render_html = timed("html", writer.render_html)
    writer.write_xlsx = timed("xlsx", writer.write_xlsx)

    gc_time = [0.0, 0.0]  # seconds in collections, start of the current one

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    gc.callbacks.append(on_gc)
    started_rss = _status_kb("VmRSS")
    client = kube.connect(settings)
    stages: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def stage(name: str):
        before_stats, before_bytes = Counter(client.stats), client.bytes_sent
        peak.reset()
        wall0, cpu0, gc0 = time.perf_counter(), time.process_time(), gc_time[0]
        yield
        stages[name] = {
            "wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0, "gc_s": gc_time[0] - gc0,
            "peak_rss_mb": peak.peak_kb() / 1024, "rss_mb": _status_kb("VmRSS") / 1024,
            "api": {k: v for k, v in (Counter(client.stats) - before_stats).items() if v},
            "bytes_sent": client.bytes_sent - before_bytes,
        }

    # The scan cache as the run finds it, put aside (a copy on disk, not in this process's memory),
    # to count afterwards how many manifests were new and how many due.
    cache_file = settings.output_dir / "scan-cache.json.gz"
    cache_copy = Path(spec["log"]).with_suffix(".cache-before.json.gz")
    cache_copy.unlink(missing_ok=True)
    if cache_file.exists():
        shutil.copyfile(cache_file, cache_copy)
    reports = not getattr(settings, "no_reports", False)
    play0 = time.perf_counter()
    # The stages as pipeline.run_play wires them (gc.freeze included).
    with stage("snapshot"):
        snap = pipeline.stage_snapshot(settings, log, client)
        gc.freeze()
    scan_started = time.time()
    with stage("scan"):
        results = pipeline.stage_scan(snap, settings, log, client)
        gc.freeze()
    with stage("apply"):
        outcome = pipeline.stage_apply(snap, results, settings, log, client)
    with stage("files"):
        # job.stage_files; job.codec in the code before it (--baseline).
        files = "stage_files" if (Path(job.__file__).parent / "stage_files.py").exists() else "codec"
        importlib.import_module(f"job.{files}").write_replay(settings.output_dir, snap=snap, results=results,
                                                             outcome=outcome)
    failed = 0
    if reports:
        with stage("report"):
            ctx = pipeline.stage_report(snap, results, outcome, settings, log)
        with stage("notify"):
            log.task("notify")
            failed = notify.notify(ctx, settings, log, out_dir=settings.output_dir).failed
    line, code = pipeline.recap(snap, results, outcome, failed)
    log.recap(line)
    play_wall = time.perf_counter() - play0
    states = Counter(r.state.value for r in results.values())
    result = {
        "exit": code, "recap": line, "wall_s": play_wall, "start_rss_mb": started_rss / 1024,
        "peak_exact": peak.exact, "stages": stages,
        "snapshot": {"pods": len(snap.pods), "pages": snap.pages, "manifests": len(snap.refs()),
                     "namespaces": len(snap.namespaces), "problems": len(snap.problems)},
        "scan": {"manifests": len(results), "states": dict(states)},
        "apply": {name: len(getattr(outcome, name)) for name in
                  ("created", "updated", "deleted", "unchanged", "kept", "unmanaged", "failed")},
        "report": {"entries": ctx.entries, "render_s": render,
                   "html_bytes": os.path.getsize(settings.output_dir / "report.html"),
                   "xlsx_bytes": os.path.getsize(settings.output_dir / "report.xlsx")} if reports else None,
        "keys": {"created": outcome.created, "updated": outcome.updated, "deleted": outcome.deleted},
        "cache": cache_figures(settings, snap, results, cache_copy, scan_started),
        "code": str(Path(pipeline.__file__).resolve().parents[1]),
    }
    Path(spec["result"]).write_text(json.dumps(result))


def cache_figures(settings: Any, snap: Any, results: dict, before: Path, now: float) -> dict[str, Any] | None:
    """How many of this run's manifests were new to the scan cache it started with, and how many
    were due again (None for code without a scan cache, e.g. --baseline's)."""
    if not hasattr(settings, "rescan_after"):
        return None
    from job import scan_cache
    cached: dict = {}
    why = ""
    if before.exists():
        key = scan_cache.fingerprint(settings, cluster=snap.cluster)
        cached, why = scan_cache.load(before, key=key, wanted=results.keys())
        before.unlink()
    rescan = settings.rescan_after * 3600
    due = sum(1 for e in cached.values() if not scan_cache.is_fresh(e, now=now, rescan_after=rescan))
    return {"manifests": len(results), "new": len(results) - len(cached), "due": due,
            "fresh": len(cached) - due, "warning": why}


def scan_child(spec_file: str) -> None:
    """The scan alone (the registries part of the scan stage), in a fresh process."""
    spec = json.loads(Path(spec_file).read_text())
    # Imported before the clock starts, as bench_scan.py does: a run pays for them once, not per answer.
    import job.registries.online  # noqa: F401
    from job.log import QuietLog
    from job.model import ImageRef, ScanRequest
    from job.registries import scan_manifests
    from job.settings import Settings

    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["settings"].items()})
    requests = [ScanRequest(ImageRef(*ref)) for ref in spec["refs"]]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = scan_manifests(requests, settings, secrets=None, log=QuietLog(), vulnerable_only=True)
    Path(spec["result"]).write_text(json.dumps({
        "wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0, "manifests": len(results)}))


def scan_sweep(concurrencies: list[int], args: argparse.Namespace, cluster: synth.Cluster, registry: "Registry",
               workdir: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The registry part of the scan at several concurrency settings: wall time against the
    latency-bound ideal (manifests / concurrency x latency)."""
    refs = [[registry.hosts[m.host], m.repository, m.digest] for m in cluster.manifests[:args.manifests]]
    out = []
    for concurrency in concurrencies:
        registry.command("reset")
        spec_file, result_file = workdir / f"scan-{concurrency}.spec.json", workdir / f"scan-{concurrency}.json"
        spec_file.write_text(json.dumps({
            "refs": refs, "result": str(result_file),
            "settings": {k: settings[k] for k in ("extra_certs", "insecure_registry")} | {
                "registry_concurrency": concurrency,
                "registry_host_concurrency": max(args.registry_host_concurrency, -(-concurrency // args.hosts))}}))
        subprocess.run([sys.executable, __file__, "--scan-child", str(spec_file)], cwd=REPO, check=True)
        r = json.loads(result_file.read_text())
        stats = registry.command("stats")
        r.update(concurrency=concurrency, ideal_s=len(refs) / concurrency * args.latency,
                 max_in_flight=stats["max_in_flight"],
                 requests=sum(h["security"] for h in stats["hosts"].values()))
        r["cpu_ms_per_answer"] = 1000 * r["cpu_s"] / max(1, r["requests"])
        out.append(r)
        say(f"  scan alone at concurrency {concurrency}: {r['wall_s']:.1f} s, ideal {r['ideal_s']:.1f} s, "
            f"{r['cpu_ms_per_answer']:.2f} ms CPU per answer")
    return out


# --- the registry simulator, in a process of its own ---------------------------------------------


def serve_registry(spec_json: str) -> None:
    """Quay hosts serving the synthetic reports; commands on stdin, answers on stdout (JSON lines)."""
    spec = json.loads(spec_json)
    from registry_sim import Gauge, QuayRole, SimHost

    ca = None
    ca_file = ""
    if spec["tls"]:
        import trustme

        ca = trustme.CA()
        ca_file = str(Path(spec["workdir"]) / "registry-ca.pem")
        ca.cert_pem.write_to_path(ca_file)
    gauge = Gauge()
    hosts = [SimHost(ca=ca, gauge=gauge).start() for _ in range(spec["hosts"])]
    roles = [QuayRole(h) for h in hosts]
    for h in hosts:
        h.delay = spec["latency"]
    print(json.dumps({"hosts": [h.host for h in hosts], "ca": ca_file}), flush=True)

    cluster = synth.build(pods=spec["pods"], manifests=spec["manifests"], vulns=spec["vulns"],
                          hosts=spec["hosts"], seed=spec["seed"])
    synth.plan_churn(cluster, spec["churn"])
    synth.plan_growth(cluster, spec["growth"])
    reports: dict[str, bytes] = {}
    for m in cluster.manifests:
        status, body = synth.quay_report(cluster, m.index)
        if status == 200:
            reports[m.digest] = body
    for role in roles:
        role.reports = reports
    print(json.dumps({"ready": True, "reports": len(reports), "bytes": sum(map(len, reports.values()))}),
          flush=True)

    security = r"/api/v1/repository/.+/security"
    for command in sys.stdin:
        command = command.strip()
        if command == "stats":
            doc = {"max_in_flight": gauge.max, "hosts": {}}
            for h in hosts:
                asked = h.requests("GET", security)
                doc["hosts"][h.host] = {
                    "security": len(asked), "distinct": len({s.path for s in asked}),
                    "discovery": len(h.requests("GET", r"/\.well-known/app-capabilities")),
                    "all": len(h.requests()), "max_in_flight": h.max_in_flight}
            print(json.dumps(doc), flush=True)
        elif command == "reset":
            for h in hosts:
                with h._lock:
                    h.seen.clear()
                h.own_gauge.max = 0
            gauge.max = 0
            print("{}", flush=True)
        elif command == "quit":
            break
    for h in hosts:
        h.stop()


class Registry:
    """The orchestrator's handle on the simulator process."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        spec = {"tls": not args.plain_http, "workdir": str(workdir), "hosts": args.hosts, "latency": args.latency,
                "pods": args.pods, "manifests": args.manifests, "vulns": args.vulns, "seed": args.seed,
                "churn": args.churn, "growth": args.growth}
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-registry", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        first = self._read()
        self.hosts: list[str] = first["hosts"]
        self.ca: str = first["ca"]
        self._ready: dict | None = None

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the registry simulator exited ({self.proc.wait()})")
        return json.loads(line)

    def wait_ready(self) -> dict:
        if self._ready is None:
            self._ready = self._read()
        return self._ready

    def command(self, name: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        return self._read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# --- the control plane and filling it ---------------------------------------------------------------


def control_plane_class(quota_gb: float):
    from controlplane import ControlPlane

    class BenchControlPlane(ControlPlane):
        """The test control plane; etcd with its default quota (2 GiB, what a CronJob's cluster
        has), or with room for a big cluster's history when --etcd-quota-gb raises it."""

        def _spawn(self, name, args):  # noqa: ANN001, ANN202
            if name == "etcd" and quota_gb:
                args = [*args, f"--quota-backend-bytes={int(quota_gb * 1024 ** 3)}"]
            return super()._spawn(name, args)

    return BenchControlPlane


class Loader:
    """Bulk writes to the API server: one keep-alive HTTPS connection per worker thread, bodies
    encoded once, retries on 429/5xx and dropped connections."""

    def __init__(self, cp: Any, workers: int) -> None:
        self.port = cp.port
        self.token = cp.admin_token
        self.context = ssl.create_default_context(cafile=str(cp.ca_file))
        self.workers = workers
        self._local = threading.local()
        self.requests = 0

    def _conn(self, fresh: bool = False) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = self._local.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                                                  timeout=120)
        return conn

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             exists_ok: bool = False) -> None:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type,
                   "Accept": "application/vnd.kubernetes.protobuf,application/json"}
        for attempt in range(8):
            self.requests += 1
            try:
                conn = self._conn(fresh=attempt > 0)
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                answer = resp.read()
            except (OSError, http.client.HTTPException):
                time.sleep(0.2 * 2 ** attempt)
                continue
            if resp.status < 300 or (exists_ok and resp.status == 409):
                return
            if resp.status in (429, 500, 502, 503, 504):
                time.sleep(0.2 * 2 ** attempt)
                continue
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {answer[:300]!r}")
        raise RuntimeError(f"{method} {path}: no success after retries")

    def run(self, label: str, tasks: list[Callable[[], int]]) -> float:
        """Run tasks (each returns how many items it did) on the pool, with a progress line."""
        total = len(tasks)
        done = 0
        lock = threading.Lock()
        t0 = time.perf_counter()
        last = [t0]

        def one(task: Callable[[], int]) -> None:
            nonlocal done
            task()
            with lock:
                done += 1
                now = time.perf_counter()
                if now - last[0] >= 10 or done == total:
                    last[0] = now
                    say(f"    {label}: {done:,}/{total:,} ({done / (now - t0):,.0f}/s)")

        with ThreadPoolExecutor(self.workers) as pool:
            for future in [pool.submit(one, t) for t in tasks]:
                future.result()
        return time.perf_counter() - t0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def populate(cp: Any, cluster: synth.Cluster, hosts: list[str], loader: Loader) -> dict[str, Any]:
    t0 = time.perf_counter()
    requests0 = loader.requests
    say(f"  filling the cluster: {len(cluster.namespaces):,} namespaces, {len(cluster.workloads):,} workloads, "
        f"{cluster.pods:,} pods")
    loader.run("namespaces", [
        (lambda ns=ns, n=n: loader.call("POST", "/api/v1/namespaces", synth.namespace_body(cluster, ns, n)))
        for n, ns in enumerate(cluster.namespaces)])
    # No controllers run: the ServiceAccount each namespace gets is made by hand.
    loader.run("service accounts", [
        (lambda ns=ns: loader.call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
                                   exists_ok=True))
        for ns in cluster.namespaces])
    owners = [body for w in cluster.workloads for body in synth.owner_bodies(w)]
    loader.run("replicasets and jobs", [(lambda b=b: create_owner(loader, b)) for b in owners])
    loader.run("pods created and made Running", pod_tasks(cluster, hosts, loader, cluster.workloads))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "requests": loader.requests - requests0,
            "rate": (loader.requests - requests0) / seconds}


def create_owner(loader: Loader, body: dict) -> None:
    ns = body["metadata"]["namespace"]
    plural = {"ReplicaSet": f"/apis/apps/v1/namespaces/{ns}/replicasets",
              "Job": f"/apis/batch/v1/namespaces/{ns}/jobs"}[body["kind"]]
    loader.call("POST", plural, body, exists_ok=True)


def pod_tasks(cluster: synth.Cluster, hosts: list[str], loader: Loader,
              workloads: Iterable[synth.WorkloadSpec]) -> list[Callable[[], None]]:
    tasks = []
    for w in workloads:
        for name, body, status in synth.pods_of(cluster, hosts, w):
            def task(ns: str = w.namespace, name: str = name, body: dict = body, status: dict = status) -> None:
                loader.call("POST", f"/api/v1/namespaces/{ns}/pods", body)
                loader.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", status,
                            content_type="application/merge-patch+json")
            tasks.append(task)
    return tasks


def churn(cluster: synth.Cluster, hosts: list[str], loader: Loader) -> dict[str, Any]:
    """The planned rollouts: new ReplicaSets, old pods deleted, new pods created and Running."""
    t0 = time.perf_counter()
    changed = synth.apply_churn(cluster)
    old_pods = [(before.namespace, name) for before, _ in changed for name in before.pod_names()]
    loader.run("old pods deleted", [
        (lambda ns=ns, name=name: loader.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0"))
        for ns, name in old_pods])
    loader.run("new replicasets", [(lambda b=b: create_owner(loader, b))
                                   for _, after in changed for b in synth.owner_bodies(after)])
    loader.run("new pods created and made Running", pod_tasks(cluster, hosts, loader, [a for _, a in changed]))
    return {"seconds": time.perf_counter() - t0, "workloads": len(changed), "pods": len(old_pods),
            "new_manifests": len({a.containers[0].manifest for _, a in changed})}


def growth(cluster: synth.Cluster, hosts: list[str], loader: Loader) -> dict[str, Any]:
    """The planned new Deployments: their ReplicaSets, their pods created and Running."""
    t0 = time.perf_counter()
    running = cluster.running_manifests()
    added = synth.apply_growth(cluster)
    loader.run("new replicasets", [(lambda b=b: create_owner(loader, b)) for w in added for b in synth.owner_bodies(w)])
    loader.run("new pods created and made Running", pod_tasks(cluster, hosts, loader, added))
    return {"seconds": time.perf_counter() - t0, "workloads": len(added), "pods": sum(w.replicas for w in added),
            "new_manifests": len({c.manifest for w in added for c in w.containers} - running)}


def server_cpu(cp: Any) -> dict[str, float]:
    """CPU seconds used so far by kube-apiserver and etcd (from /proc)."""
    out = {}
    for name in ("kube-apiserver", "etcd"):
        proc = cp._procs.get(name)
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (AttributeError, OSError, IndexError, ValueError):
            out[name] = 0.0
    return out


#: Before each timed run the control plane is left to finish what earlier writes started (etcd
#: compaction, the API server's caches): until it uses less than this share of a core over
#: SETTLE_WINDOW seconds, SETTLE_MAX seconds at most. Otherwise the run right after the first
#: run's 10,682 creations waits on a busy API server and the next one does not.
SETTLE_SHARE, SETTLE_WINDOW, SETTLE_MAX = 0.1, 3.0, 120.0


def settle(cp: Any) -> float:
    """Waits for the control plane to be quiet; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < SETTLE_MAX:
        before = sum(server_cpu(cp).values())
        time.sleep(SETTLE_WINDOW)
        if sum(server_cpu(cp).values()) - before < SETTLE_SHARE * SETTLE_WINDOW:
            break
    return time.monotonic() - t0


def object_bytes(cp: Any) -> dict[str, int]:
    """The ImageManifestVulns as the API server holds them, counted as compact JSON without their
    managedFields (the server's bookkeeping, not what the job sent), page by page."""
    count = size = 0
    params: dict[str, Any] = {"limit": 200}
    while True:
        resp = cp.request("GET", "/apis/secscan.quay.redhat.com/v1alpha1/imagemanifestvulns", params=params)
        resp.raise_for_status()
        page = resp.json()
        for item in page.get("items") or ():
            (item.get("metadata") or {}).pop("managedFields", None)
            size += len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
            count += 1
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return {"objects": count, "bytes": size}
        params["continue"] = token


def etcd_db_bytes(cp: Any) -> int:
    try:
        text = cp._http.get(f"http://127.0.0.1:{cp.etcd_port}/metrics", timeout=10).text
    except Exception:  # noqa: BLE001 - a figure, not a requirement
        return 0
    found = re.search(r"^etcd_mvcc_db_total_size_in_bytes (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


# --- snapshot parse against the kubernetes client's models ------------------------------------------


def fetch_pages(cp: Any, page_size: int) -> list[bytes]:
    """The raw pages of the job's pod LIST (same path, selector and page size)."""
    pages: list[bytes] = []
    params: dict[str, Any] = {"fieldSelector": "status.phase=Running", "limit": page_size}
    while True:
        resp = cp.request("GET", "/api/v1/pods", params=params)
        resp.raise_for_status()
        pages.append(resp.content)
        token = (json.loads(resp.content).get("metadata") or {}).get("continue")
        if not token:
            return pages
        params["continue"] = token


def parse_comparison(pages: list[bytes], sample: int) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    from job.codec import decode_json
    from job.settings import Settings
    from job.snapshot import SnapshotBuilder

    # What the snapshot stage does with each page: decode, parse into Pods.
    t0 = time.process_time()
    builder = SnapshotBuilder(Settings())
    for data in pages:
        builder.add(decode_json(data)["items"])
    pods = len(builder.finish(owners={}, namespaces={}, cluster="bench", source="cluster", pages=len(pages)).pods)
    ours = time.process_time() - t0
    del builder

    chosen = pages[:sample] if sample else pages

    class Raw:
        def __init__(self, data: bytes) -> None:
            self.data = data

    api = ApiClient()
    t0 = time.process_time()
    models = 0
    for data in chosen:
        models += len(api.deserialize(Raw(data), "V1PodList").items)
    public = time.process_time() - t0
    t0 = time.process_time()
    for data in chosen:
        api._ApiClient__deserialize(json.loads(data), "V1PodList")
    private = time.process_time() - t0
    share = len(chosen) / len(pages)
    return {"pages": len(pages), "pods": pods, "bytes": sum(map(len, pages)), "ours_s": ours,
            "k8s_pages": len(chosen), "k8s_pods": models,
            "k8s_deserialize_s": public / share, "k8s_private_deserialize_s": private / share,
            "ratio": public / share / ours if ours else 0.0,
            "ratio_private": private / share / ours if ours else 0.0}


# --- running the play -----------------------------------------------------------------------------


def write_feeds(cluster: Any, workdir: Path) -> tuple[str, str]:
    """A KEV catalogue of the real one's size (about 1,400 entries, one in 40 of the cluster's
    advisories among them) and an EPSS file of the real one's size (300,000 rows, every advisory of
    the cluster among them), dated today: what the play ranks with."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    names = [a.name for a in cluster.advisories]
    kev = [{"cveID": n, "dueDate": "2026-01-15", "knownRansomwareCampaignUse": "Known" if i % 7 == 0 else "Unknown",
            "vendorProject": "synthetic", "product": "synthetic", "shortDescription": "x" * 200}
           for i, n in enumerate(names[::40])]
    kev += [{"cveID": f"CVE-2015-{20000 + i}", "dueDate": "2022-05-03", "knownRansomwareCampaignUse": "Unknown",
             "vendorProject": "synthetic", "product": "synthetic", "shortDescription": "x" * 200}
            for i in range(max(0, 1_400 - len(kev)))]
    kev_file, epss_file = workdir / "kev.json", workdir / "epss.csv"
    kev_file.write_text(json.dumps({"dateReleased": f"{today}T00:00:00Z", "vulnerabilities": kev}))
    rows = [f"#model_version:v2025.03.14,score_date:{today}T00:00:00+0000", "cve,epss,percentile"]
    rows += [f"{n},{(i % 997) / 997:.5f},{(i % 991) / 991:.5f}" for i, n in enumerate(names)]
    rows += [f"CVE-1999-{100000 + i},0.00043,0.1" for i in range(max(0, 300_000 - len(names)))]
    epss_file.write_text("\n".join(rows) + "\n")
    return str(kev_file), str(epss_file)


def run_play(name: str, args: argparse.Namespace, cp: Any, registry: Registry, workdir: Path,
             settings: dict[str, Any], code: Path | None = None) -> dict[str, Any]:
    """One run of the play in a new process; `code`: the checkout whose job package it runs."""
    registry.command("reset")
    spec_file = workdir / f"{name}.spec.json"
    result_file = workdir / f"{name}.result.json"
    log_file = workdir / f"{name}.log"
    spec_file.write_text(json.dumps({"settings": settings, "result": str(result_file), "log": str(log_file)}))
    waited = settle(cp)
    say(f"  run '{name}': the play in a new process, the control plane quiet after {waited:.0f} s (log: {log_file})")
    servers0 = server_cpu(cp)
    env = {**os.environ, "IMVJOB_BENCH_CODE": str(code or REPO)}
    proc = subprocess.run([sys.executable, __file__, "--play", str(spec_file)], cwd=code or REPO, env=env)
    servers1 = server_cpu(cp)
    if proc.returncode != 0 or not result_file.exists():
        say(log_file.read_text()[-3000:] if log_file.exists() else "(no log)")
        raise RuntimeError(f"the play '{name}' failed (exit {proc.returncode})")
    result = json.loads(result_file.read_text())
    stats = registry.command("stats")
    result["registry"] = {
        "security": sum(h["security"] for h in stats["hosts"].values()),
        "distinct": sum(h["distinct"] for h in stats["hosts"].values()),
        "discovery": sum(h["discovery"] for h in stats["hosts"].values()),
        "all": sum(h["all"] for h in stats["hosts"].values()),
        "max_in_flight": stats["max_in_flight"],
        "max_in_flight_per_host": max((h["max_in_flight"] for h in stats["hosts"].values()), default=0)}
    result["etcd_db_bytes"] = etcd_db_bytes(cp)
    result["server_cpu_s"] = {k: servers1[k] - servers0[k] for k in servers1}
    result["name"] = name
    result["settled_s"] = waited
    return result


def expected_writes(before: dict[str, frozenset[str]], after: dict[str, frozenset[str]]) -> dict[str, set[str]]:
    return {"created": set(after) - set(before), "deleted": set(before) - set(after),
            "updated": {k for k in set(before) & set(after) if before[k] != after[k]}}


# --- printing -------------------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def print_run(r: dict[str, Any]) -> None:
    print(f"\n== run '{r['name']}': exit {r['exit']}, {r['wall_s']:.1f} s; {r['recap']}")
    snap = r["snapshot"]
    print(f"   {snap['pods']:,} running pods in {snap['pages']} pages, {snap['manifests']:,} manifests, "
          f"{snap['namespaces']:,} namespaces; scan states {r['scan']['states']}")
    cache = r.get("cache")
    if cache:
        print(f"   scan cache: {cache['new']:,} manifests new to it, {cache['due']:,} due again, {cache['fresh']:,} "
              f"answered from it" + (f" (ignored: {cache['warning']})" if cache["warning"] else ""))
    servers = r.get("server_cpu_s") or {}
    if servers:
        print("   CPU of the control plane during the run: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in servers.items()))
    print(f"   {'stage':<9}{'wall s':>8}{'cpu s':>8}{'gc s':>7}{'peak MB':>9}  {'API requests':<44}{'sent':>10}  registry")
    for name in STAGES:
        s = r["stages"].get(name)
        if s is None:
            continue
        api = " ".join(f"{k}={v:,}" for k, v in sorted(s["api"].items())) or "-"
        reg = "-"
        if name == "scan":
            g = r["registry"]
            reg = (f"{g['security']:,} reports ({g['distinct']:,} distinct) + {g['discovery']} discovery; "
                   f"max {g['max_in_flight']} in flight ({g['max_in_flight_per_host']}/host)")
        print(f"   {name:<9}{s['wall_s']:>8.1f}{s['cpu_s']:>8.1f}{s['gc_s']:>7.1f}{s['peak_rss_mb']:>9.0f}  {api:<44}"
              f"{human_bytes(s['bytes_sent']):>10}  {reg}")
    rep = r["report"]
    if rep:
        render = rep["render_s"]
        print(f"   report: {rep['entries']:,} vulnerability rows; html {render.get('html', 0):.1f} s "
              f"({human_bytes(rep['html_bytes'])}), xlsx {render.get('xlsx', 0):.1f} s "
              f"({human_bytes(rep['xlsx_bytes'])}); etcd database {human_bytes(r['etcd_db_bytes'])}")
    else:
        print(f"   no report (--no-reports); etcd database {human_bytes(r['etcd_db_bytes'])}")


def print_side_by_side(doc: dict[str, Any]) -> None:
    """The unchanged run of the code before (--baseline) and of this code, and the frequent run,
    stage by stage: wall seconds and the ratio to before."""
    runs = {r["name"]: r for r in doc["runs"]}
    before, after, frequent = runs.get("unchanged (before)"), runs.get("unchanged"), runs.get("frequent")
    if not before or not after:
        return
    print(f"\nside by side, the same cluster, one run each (before: {before['code']}):")
    print(f"   {'stage':<10}{'before s':>10}{'after s':>10}{'ratio':>8}{'frequent s':>12}{'ratio':>8}")
    rows = [(name, before["stages"].get(name, {}).get("wall_s"), after["stages"].get(name, {}).get("wall_s"),
             (frequent or {}).get("stages", {}).get(name, {}).get("wall_s")) for name in STAGES]
    rows.append(("whole run", before["wall_s"], after["wall_s"], (frequent or {}).get("wall_s")))

    def cell(x: float | None, ref: float | None) -> str:
        if x is None:
            return f"{'-':>10}{'':>8}"
        return f"{x:>10.1f}" + (f"{x / ref:>7.2f}x" if ref else f"{'':>8}")

    for name, b, a, f in rows:
        print(f"   {name:<10}{(f'{b:.1f}' if b is not None else '-'):>10}{cell(a, b)}  {cell(f, b)}")
    peaks = [max(s["peak_rss_mb"] for s in r["stages"].values()) for r in (before, after)]
    print(f"   peak RSS: before {peaks[0]:.0f} MB, after {peaks[1]:.0f} MB; registry requests: before "
          f"{before['registry']['security']:,}, after {after['registry']['security']:,}")


def checks(doc: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def check(name: str, ok: bool, value: str, target: str, *, at_scale: bool = False) -> None:
        """at_scale: a target set for make bench's 50,000 pods, only shown (not judged) on a small run."""
        out.append({"check": name, "ok": bool(ok), "value": value, "target": target,
                    "judged": not (at_scale and args.small)})

    runs = {r["name"]: r for r in doc["runs"]}
    ours = [r for r in doc["runs"] if r["name"] != "unchanged (before)"]
    for r in ours:
        g = r["registry"]
        cache = r.get("cache") or {}
        check(f"{r['name']}: one report request per distinct manifest asked", g["security"] == g["distinct"],
              f"{g['security']:,} requests, {g['distinct']:,} distinct", "requests = distinct manifests asked")
        if cache:
            bound = cache["new"] + cache["due"]
            check(f"{r['name']}: registry requests <= new + due manifests", g["security"] <= bound,
                  f"{g['security']:,} requests; {cache['new']:,} new + {cache['due']:,} due", f"<= {bound:,}")
        pages = math.ceil(r["snapshot"]["pods"] / args.page_size)
        check(f"{r['name']}: pod LIST pages", r["snapshot"]["pages"] == pages,
              f"{r['snapshot']['pages']} pages", f"ceil({r['snapshot']['pods']:,} / {args.page_size}) = {pages}")
        gets = r["stages"]["snapshot"]["api"].get("get", 0) + r["stages"]["scan"]["api"].get("get", 0)
        check(f"{r['name']}: no per-pod GETs", gets == 0, f"{gets} GETs in snapshot and scan", "0")
        peak = max(s["peak_rss_mb"] for s in r["stages"].values())
        check(f"{r['name']}: peak memory of the play" + (", reports included" if r["report"] else ""), peak <= 350,
              f"{peak:.0f} MB", "<= 350 MB")
        if r["report"]:
            render = r["report"]["render_s"]
            both = render.get("html", 0) + render.get("xlsx", 0)
            check(f"{r['name']}: XLSX ({r['report']['entries']:,} rows) + HTML", both < 60, f"{both:.1f} s", "< 60 s")
    first = runs.get("first")
    if first:
        asked = first["registry"]["security"]
        check("first: every manifest asked once", asked == first["scan"]["manifests"],
              f"{asked:,} requests, {first['scan']['manifests']:,} manifests", "requests = manifests")
        ideal = asked / args.registry_concurrency * args.latency
        scan = first["stages"]["scan"]["wall_s"]
        check("first: scan wall time", ideal and scan <= 1.25 * ideal,
              f"{scan:.2f} s = {scan / ideal:.2f}x of {ideal:.2f} s" if ideal else f"{scan:.2f} s",
              f"<= 1.25 x ({asked:,} / {args.registry_concurrency} x {args.latency * 1000:.0f} ms)", at_scale=True)
    # Writes: a new object is created bare, then its status, then its labels and content hash as
    # a small patch (apply.py: the hash last, pod labels never ahead of status.affectedPods); a
    # changed one gets one status write and at most two spec/label writes (PUT when the spec
    # changes, else a patch); a deleted one, one delete.
    def writes_ok(run: dict[str, Any], created: int, updated: int, deleted: int) -> tuple[bool, str, str]:
        w = {v: run["stages"]["apply"]["api"].get(v, 0) for v in WRITE_VERBS}
        meta = w["update"] + w["patch"]
        ok = (w["create"] == created and w["delete"] == deleted and w["update-status"] == created + updated
              and created + updated <= meta <= 2 * (created + updated))
        target = (f"create={created:,} update-status={created + updated:,} update+patch={created + updated:,}.."
                  f"{2 * (created + updated):,} delete={deleted:,}")
        return ok, " ".join(f"{k}={v:,}" for k, v in w.items()), target

    if first:
        n = doc["expected"]["first"]
        ok, value, target = writes_ok(first, n, 0, 0)
        got = first["apply"]
        check("first: writes only for the objects to create", ok and got["created"] == n and got["failed"] == 0,
              f"{value}; created={got['created']:,}", target)
        sent = sum(s["bytes_sent"] for s in first["stages"].values())
        objects = doc.get("objects") or {}
        if objects.get("bytes"):
            check("first: bytes sent to the API server / bytes of the objects written",
                  sent <= 2.1 * objects["bytes"],
                  f"{human_bytes(sent)} / {human_bytes(objects['bytes'])} ({objects['objects']:,} objects) = "
                  f"{sent / objects['bytes']:.2f}x", "<= 2.1x")
        quota = args.etcd_quota_gb * 1024 ** 3 if args.etcd_quota_gb else ETCD_DEFAULT_QUOTA
        biggest = max(r["etcd_db_bytes"] for r in doc["runs"])
        failed = sum(r["apply"]["failed"] for r in doc["runs"])
        check("etcd: within quota" + ("" if not args.etcd_quota_gb else f" (raised to {args.etcd_quota_gb} GiB)"),
              biggest <= quota and failed == 0,
              f"database {human_bytes(first['etcd_db_bytes'])} after the first run, at most "
              f"{human_bytes(biggest)}; {failed} failed writes", f"<= {human_bytes(quota)}, no failed write")
    second = runs.get("unchanged")
    if second:
        writes = {v: sum(s["api"].get(v, 0) for s in second["stages"].values()) for v in WRITE_VERBS}
        check("unchanged: zero writes", not any(writes.values()), str(writes), "0")
    before = runs.get("unchanged (before)")
    if second and before:
        check("unchanged: wall time against the code before", second["wall_s"] <= 0.5 * before["wall_s"],
              f"{second['wall_s']:.1f} s / {before['wall_s']:.1f} s = {second['wall_s'] / before['wall_s']:.2f}x",
              "<= 0.5x")
    third = runs.get("churn")
    if third:
        exp = doc["expected"]["churn"]
        got = third["apply"]
        ok, value, target = writes_ok(third, exp["created"], exp["updated"], exp["deleted"])
        check("churn: writes only for the changed objects", ok and doc["expected"]["churn_keys_match"],
              f"{value}; created={got['created']:,} updated={got['updated']:,} deleted={got['deleted']:,} "
              f"(the objects {'are' if doc['expected']['churn_keys_match'] else 'are NOT'} the changed ones)",
              target)
    frequent = runs.get("frequent")
    if frequent:
        exp = doc["expected"]["frequent"]
        ok, value, target = writes_ok(frequent, exp["created"], exp["updated"], exp["deleted"])
        check("frequent: writes only for the new pods' objects", ok and doc["expected"]["frequent_keys_match"],
              value, target)
        ref = before or second
        if ref:
            check(f"frequent: wall time against the unchanged run of {'the code before' if before else 'this code'}",
                  frequent["wall_s"] <= 0.25 * ref["wall_s"],
                  f"{frequent['wall_s']:.1f} s / {ref['wall_s']:.1f} s = {frequent['wall_s'] / ref['wall_s']:.2f}x",
                  "<= 0.25x" + ("" if before else " (no --baseline: compared with this code's)"), at_scale=True)
    for r in doc.get("scan_sweep") or ():
        # At 100 manifests (bench-small) a scan's fixed costs weigh on every answer.
        check(f"scan alone at concurrency {r['concurrency']}: CPU per answer", r["cpu_ms_per_answer"] <= 1.5,
              f"{r['cpu_ms_per_answer']:.2f} ms", "<= 1.5 ms", at_scale=True)
        if r["concurrency"] in (32, 64):
            ratio = r["wall_s"] / r["ideal_s"] if r["ideal_s"] else math.inf
            check(f"scan alone at concurrency {r['concurrency']}: wall / ideal", ratio <= 1.25, f"{ratio:.2f}x",
                  "<= 1.25x", at_scale=True)
    parse = doc.get("parse")
    if parse:
        check("snapshot parse vs kubernetes models", parse["ratio"] >= 5,
              f"{parse['ratio']:.1f}x (deserialize), {parse['ratio_private']:.1f}x (__deserialize)", ">= 5x")
    return out


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else ""
    mem = 0
    with contextlib.suppress(OSError):
        found = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        mem = int(found.group(1)) * 1024 if found else 0
    return {"nproc": os.cpu_count(), "memory_gb": round(mem / 1024 ** 3, 1), "cpu": model,
            "python": platform.python_version(), "kernel": platform.release(), "loadavg_start": loadavg()}


def loadavg() -> list[float]:
    """The machine's 1/5/15-minute load: other work on the machine shows in every figure."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help=f"a small cluster ({SMALL['pods']:,} pods, "
                                                             f"{SMALL['manifests']} manifests): under a minute")
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--manifests", type=int, default=3_000)
    parser.add_argument("--vulns", type=int, default=64,
                        help="vulnerabilities per manifest, roughly (64: ~69 per scanned manifest, 200,000 report "
                             "rows at 3,000 manifests)")
    parser.add_argument("--latency", type=float, default=0.05, help="registry latency in seconds (default 0.05)")
    parser.add_argument("--hosts", type=int, default=8, help="simulated registry hosts (default 8)")
    parser.add_argument("--registry-concurrency", type=int, default=32, help="the job's setting (default 32)")
    parser.add_argument("--registry-host-concurrency", type=int, default=8, help="the job's setting (default 8)")
    parser.add_argument("--qps", type=float, default=200.0,
                        help="the job's write rate limit (default 200: the API server sets the pace; the job's "
                             "own default is 50)")
    parser.add_argument("--write-concurrency", type=int, default=8, help="the job's setting (default 8)")
    parser.add_argument("--page-size", type=int, default=500, help="the job's setting (default 500)")
    parser.add_argument("--churn", type=float, default=0.05, help="share of pods rolled to new images (0.05)")
    parser.add_argument("--growth", type=float, default=0.01,
                        help="share of pods new before the frequent run, half on new manifests (0.01)")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout of the code before (e.g. `git worktree add /tmp/base 6c0c6f0`): its "
                             "unchanged run too, right after ours, for before/after columns")
    parser.add_argument("--etcd-quota-gb", type=float, default=0,
                        help="raise etcd's quota to this many GiB (default: etcd's own, 2 GiB)")
    parser.add_argument("--parse-pages", type=int, default=20,
                        help="pages deserialised into kubernetes models, the time scaled to all pages (default 20; "
                             "0: all)")
    parser.add_argument("--loaders", type=int, default=16, help="connections filling the cluster (16)")
    parser.add_argument("--plain-http", action="store_true", help="registry over plain HTTP instead of HTTPS")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-feeds", action="store_true", help="run without the KEV and EPSS feeds")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (reports, logs)")
    parser.add_argument("--scan-sweep", default="8,16,32,64",
                        help="also time the registry part of the scan alone at these concurrencies "
                             "(comma-separated; '' for none)")
    parser.add_argument("--play", help=argparse.SUPPRESS)
    parser.add_argument("--scan-child", help=argparse.SUPPRESS)
    parser.add_argument("--serve-registry", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.play:
        play_child(args.play)
        return
    if args.serve_registry:
        serve_registry(args.serve_registry)
        return
    if args.scan_child:
        scan_child(args.scan_child)
        return
    if args.small:
        args.pods, args.manifests = SMALL["pods"], SMALL["manifests"]

    began = time.perf_counter()
    doc: dict[str, Any] = {"machine": machine(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                           "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                                          if k not in ("play", "serve_registry", "scan_child", "json")}}
    say(f"imvjob play benchmark: {args.pods:,} pods, {args.manifests:,} manifests, ~{args.vulns} vulnerabilities "
        f"each; registry latency {args.latency * 1000:.0f} ms on {args.hosts} hosts")
    cluster = synth.build(pods=args.pods, manifests=args.manifests, vulns=args.vulns, hosts=args.hosts,
                          seed=args.seed)
    synth.plan_churn(cluster, args.churn)
    synth.plan_growth(cluster, args.growth)
    if args.baseline and not (args.baseline / "job" / "pipeline.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of this project (no job/pipeline.py)")
    workdir = Path(tempfile.mkdtemp(prefix="imvjob-bench-"))
    registry = Registry(args, workdir)
    cp = None
    try:
        from controlplane import CRD_NAME, PROJECT_CRD, find_binaries

        t0 = time.perf_counter()
        cp = control_plane_class(args.etcd_quota_gb).start(find_binaries())
        cp.apply_yaml(PROJECT_CRD)
        cp.wait_crd_established(CRD_NAME)
        say(f"  control plane ready in {time.perf_counter() - t0:.1f} s ({cp.server})")
        loader = Loader(cp, args.loaders)
        doc["populate"] = populate(cp, cluster, registry.hosts, loader)
        say(f"  cluster filled in {doc['populate']['seconds']:.0f} s ({doc['populate']['requests']:,} requests, "
            f"{doc['populate']['rate']:,.0f}/s)")
        ready = registry.wait_ready()
        say(f"  registry: {ready['reports']:,} reports, {human_bytes(ready['bytes'])} on {len(registry.hosts)} hosts")

        say("  snapshot parse against the kubernetes client's models")
        pages = fetch_pages(cp, args.page_size)
        doc["parse"] = parse_comparison(pages, args.parse_pages)
        del pages

        settings = {"kubeconfig": str(cp.kubeconfig), "output": str(workdir / "out"), "cluster_name": "bench",
                    "lease_namespace": "default", "progress": "never",
                    "extra_certs": registry.ca,
                    "insecure_registry": [f"http://{h}" for h in registry.hosts] if args.plain_http else [],
                    "registry_concurrency": args.registry_concurrency,
                    "registry_host_concurrency": args.registry_host_concurrency,
                    "qps": args.qps, "write_concurrency": args.write_concurrency, "page_size": args.page_size}
        if not args.no_feeds:
            settings["kev_feed"], settings["epss_feed"] = write_feeds(cluster, workdir)
            say("  KEV (1,400 entries) and EPSS (300,000 rows) feeds loaded by every run")
        before = synth.expected_objects(cluster)
        doc["expected"] = {"first": len(before)}
        doc["runs"] = [run_play("first", args, cp, registry, workdir, settings)]
        say("  counting the bytes of the objects written")
        doc["objects"] = object_bytes(cp)
        if args.baseline:  # the same previous run to compare with as ours has
            (workdir / "out-before").mkdir()
            shutil.copyfile(workdir / "out" / "summary.json", workdir / "out-before" / "summary.json")
        doc["runs"].append(run_play("unchanged", args, cp, registry, workdir, settings))
        if args.baseline:
            doc["runs"].append(run_play("unchanged (before)", args, cp, registry, workdir,
                                        {**settings, "output": str(workdir / "out-before")}, code=args.baseline))
        say(f"  rollout of {args.churn:.0%} of the pods to new image versions")
        doc["churn"] = churn(cluster, registry.hosts, loader)
        after = synth.expected_objects(cluster)
        want = expected_writes(before, after)
        doc["expected"]["churn"] = {k: len(v) for k, v in want.items()}
        doc["runs"].append(run_play("churn", args, cp, registry, workdir, settings))
        keys = doc["runs"][-1].pop("keys")
        doc["expected"]["churn_keys_match"] = all(set(keys[k]) == want[k] for k in want)
        say(f"  {args.growth:.0%} of new pods, then a frequent run (--no-reports, scan cache)")
        doc["growth"] = growth(cluster, registry.hosts, loader)
        grown = synth.expected_objects(cluster)
        want = expected_writes(after, grown)
        doc["expected"]["frequent"] = {k: len(v) for k, v in want.items()}
        doc["runs"].append(run_play("frequent", args, cp, registry, workdir, {**settings, "no_reports": True}))
        keys = doc["runs"][-1].pop("keys")
        doc["expected"]["frequent_keys_match"] = all(set(keys[k]) == want[k] for k in want)
        sweep = [int(x) for x in args.scan_sweep.split(",") if x.strip()]
        doc["scan_sweep"] = scan_sweep(sweep, args, cluster, registry, workdir, settings) if sweep else []
        for r in doc["runs"]:
            r.pop("keys", None)
    finally:
        registry.stop()
        if cp is not None:
            cp.stop()
        if args.keep:
            say(f"  work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    doc["seconds"] = time.perf_counter() - began
    doc["machine"]["loadavg_end"] = loadavg()

    m = doc["machine"]
    print(f"\nmachine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}; load average "
          f"{m['loadavg_start']} at the start, {m['loadavg_end']} at the end")
    print(f"cluster: {args.pods:,} pods in {len(cluster.namespaces):,} namespaces, {len(cluster.workloads):,} "
          f"workloads; filled in {doc['populate']['seconds']:.0f} s ({doc['populate']['rate']:,.0f} requests/s)")
    p = doc["parse"]
    print(f"snapshot parse of {p['pages']} pages ({p['pods']:,} pods, {human_bytes(p['bytes'])}): ours {p['ours_s']:.2f} s; "
          f"kubernetes ApiClient.deserialize {p['k8s_deserialize_s']:.1f} s ({p['ratio']:.1f}x), "
          f"__deserialize {p['k8s_private_deserialize_s']:.1f} s ({p['ratio_private']:.1f}x)"
          + (f" [models timed on {p['k8s_pages']} pages, scaled]" if p["k8s_pages"] != p["pages"] else ""))
    for r in doc["runs"]:
        print_run(r)
    o = doc.get("objects") or {}
    if o:
        print(f"\nobjects after the first run: {o['objects']:,} ImageManifestVulns, {human_bytes(o['bytes'])} as JSON")
    print_side_by_side(doc)
    if doc.get("scan_sweep"):
        print(f"\nthe registry part of the scan alone ({args.manifests:,} manifests, {args.latency * 1000:.0f} ms):")
        for r in doc["scan_sweep"]:
            print(f"   concurrency {r['concurrency']:>3}: {r['wall_s']:6.1f} s wall, {r['cpu_s']:6.1f} s CPU, "
                  f"({r['cpu_ms_per_answer']:.2f} ms per answer), "
                  f"ideal {r['ideal_s']:5.1f} s -> {r['wall_s'] / r['ideal_s']:.2f}x "
                  f"(max {r['max_in_flight']} in flight, {r['requests']:,} requests)")
    c = doc["churn"]
    print(f"\nrollout: {c['workloads']} workloads, {c['pods']:,} pods, {c['new_manifests']} new manifests; "
          f"expected writes {doc['expected']['churn']}")
    g = doc["growth"]
    print(f"growth: {g['workloads']} new workloads, {g['pods']:,} new pods, {g['new_manifests']} new manifests; "
          f"expected writes {doc['expected']['frequent']}")
    doc["checks"] = checks(doc, args)
    print("\nchecks:")
    for item in doc["checks"]:
        mark = ("ok" if item["ok"] else "MISS") if item["judged"] else "at scale only"
        print(f"  [{mark}] {item['check']}: {item['value']} (target {item['target']})")
    print(f"\nbenchmark took {doc['seconds'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
