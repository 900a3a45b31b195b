"""What a first run leaves in etcd, and why: a benchmark script (not a test) that prints figures.

    .venv/bin/python bench/bench_etcd.py --pods 10000 --manifests 600
    .venv/bin/python bench/bench_etcd.py --tree /tmp/before --pods 10000 --manifests 600   # older code

It fills a synthetic cluster in the test control plane as bench/bench_play.py does (etcd at its
default quota unless --quota), runs the play once on it in a new process (the 'first' run), and
reads etcd before and after:
- etcd_mvcc_db_total_size_in_bytes (the database file, what the quota is checked against) and
  etcd_mvcc_db_total_size_in_use_in_bytes, from etcd's /metrics;
- every ImageManifestVuln key as etcd stores it (one range over its prefix): the bytes of the
  latest revision, the object's JSON without managedFields (what a writer has to send at least
  once), and the key's version, i.e. how many writes stored a full new revision of it;
- what the job sent (request bodies, by verb) and the apply stage's wall time.
The API server compacts etcd's history every 5 minutes (keeping the revisions of the last 5 to 10
minutes), and compaction only frees pages inside the file: a first run shorter than that keeps
every revision it wrote, which is what --pods 10000 measures.
"""
from __future__ import annotations

import argparse
import base64
import importlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IMV_PREFIX = "/registry/secscan.quay.redhat.com/imagemanifestvulns/"


def etcd_metrics(cp: Any) -> dict[str, float]:
    text = cp._http.get(f"http://127.0.0.1:{cp.etcd_port}/metrics", timeout=30).text
    out = {}
    for name in ("etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes",
                 "etcd_debugging_mvcc_keys_total", "etcd_mvcc_put_total"):
        for line in text.splitlines():
            if line.startswith(name + " "):
                out[name] = float(line.split()[1])
    return out


def imv_keys(cp: Any) -> dict[str, float]:
    """Every ImageManifestVuln key, its latest revision read in pages (etcd's JSON gateway)."""
    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    url = f"http://127.0.0.1:{cp.etcd_port}/v3/kv/range"
    start, end = IMV_PREFIX, IMV_PREFIX[:-1] + chr(ord(IMV_PREFIX[-1]) + 1)
    keys = stored = bare = versions = 0
    while True:
        doc = cp._http.post(url, json={"key": b64(start), "range_end": b64(end), "limit": 200}, timeout=120).json()
        kvs = doc.get("kvs") or []
        for kv in kvs:
            value = base64.b64decode(kv["value"])
            obj = json.loads(value)
            obj.get("metadata", {}).pop("managedFields", None)
            keys += 1
            stored += len(value)
            bare += len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
            versions += int(kv.get("version", 1))
        if not doc.get("more") or not kvs:
            break
        start = base64.b64decode(kvs[-1]["key"]).decode() + "\x00"
    return {"objects": keys, "stored_bytes": stored, "object_bytes": bare, "writes_stored": versions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose job/ runs the play (default: this one)")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--manifests", type=int, default=600)
    parser.add_argument("--vulns", type=int, default=64)
    parser.add_argument("--quota", type=int, default=0, help="etcd --quota-backend-bytes (default: etcd's, 2 GiB)")
    parser.add_argument("--qps", type=float, default=200.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tree = args.tree.resolve()
    for path in (tree, tree / "tests" / "integration", tree / "bench"):
        sys.path.insert(0, str(path))
    bench = importlib.import_module("bench_play")
    assert Path(bench.__file__).resolve().is_relative_to(tree), bench.__file__
    synth = bench.synth
    from controlplane import CRD_NAME, PROJECT_CRD, ControlPlane, find_binaries

    class QuotaControlPlane(ControlPlane):
        def _spawn(self, name, args_):  # noqa: ANN001, ANN202
            if name == "etcd" and args.quota:
                args_ = [*args_, f"--quota-backend-bytes={args.quota}"]
            return super()._spawn(name, args_)

    opts = argparse.Namespace(pods=args.pods, manifests=args.manifests, vulns=args.vulns, latency=0.0, hosts=8,
                              seed=7, churn=0.05, growth=0.01, plain_http=False)
    cluster = synth.build(pods=args.pods, manifests=args.manifests, vulns=args.vulns, hosts=8, seed=7)
    synth.plan_churn(cluster, 0.05)
    workdir = Path(tempfile.mkdtemp(prefix="imvjob-bench-etcd-"))
    registry = bench.Registry(opts, workdir)
    cp = None
    doc: dict[str, Any] = {"tree": str(tree), "pods": args.pods, "manifests": args.manifests}
    try:
        cp = QuotaControlPlane.start(find_binaries())
        cp.apply_yaml(PROJECT_CRD)
        cp.wait_crd_established(CRD_NAME)
        doc["etcd_start"] = etcd_metrics(cp)
        doc["populate"] = bench.populate(cp, cluster, registry.hosts, bench.Loader(cp, 16))
        registry.wait_ready()
        doc["etcd_filled"] = etcd_metrics(cp)
        settings = {"kubeconfig": str(cp.kubeconfig), "output": str(workdir / "out"), "cluster_name": "bench",
                    "lease_namespace": "default", "progress": "never", "extra_certs": registry.ca,
                    "qps": args.qps, "write_concurrency": 8, "page_size": 500}
        run = bench.run_play("first", opts, cp, registry, workdir, settings)
        doc["first"] = {"exit": run["exit"], "recap": run["recap"], "apply": run["stages"]["apply"]}
        doc["etcd_first"] = etcd_metrics(cp)
        doc["imv"] = imv_keys(cp)
    finally:
        registry.stop()
        if cp is not None:
            cp.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    mb = 1e6
    apply = doc["first"]["apply"]
    imv, e0, e1, e2 = doc["imv"], doc["etcd_start"], doc["etcd_filled"], doc["etcd_first"]
    size, in_use = "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes"
    print(f"tree {tree}: {args.pods:,} pods, {args.manifests:,} manifests; {doc['first']['recap']}")
    print(f"etcd db (in use) MB: start {e0[size] / mb:.1f} ({e0[in_use] / mb:.1f}), filled {e1[size] / mb:.1f} "
          f"({e1[in_use] / mb:.1f}), after the first run {e2[size] / mb:.1f} ({e2[in_use] / mb:.1f}); "
          f"the first run added {(e2[size] - e1[size]) / mb:.1f} MB")
    print(f"ImageManifestVulns: {imv['objects']:,}, stored {imv['stored_bytes'] / mb:.1f} MB (latest revisions), "
          f"objects without managedFields {imv['object_bytes'] / mb:.1f} MB, writes stored {imv['writes_stored']:,} "
          f"({imv['writes_stored'] / max(1, imv['objects']):.2f} a key)")
    print(f"apply: {apply['wall_s']:.1f} s wall, {apply['cpu_s']:.1f} s CPU, requests {apply['api']}, sent "
          f"{apply['bytes_sent'] / mb:.1f} MB = {apply['bytes_sent'] / max(1, imv['object_bytes']):.2f} x the objects")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - t0:.0f} s")
