"""What any registry client could reach on this machine: the floor under bench_scan.py (not a test).

The same simulator and manifests as bench_scan.py (bench_play.py's registry over HTTPS, 3,000 Quay
reports, 50 ms latency, 8 hosts), fetched by three minimal clients that keep none of the job's
rules (no bounds, retries, redirects, proxies, breakers or deadlines):

  limit    one asyncio event loop that reads each answer and parses nothing: what the simulator
           and one client core can do at all;
  threads  one thread per request in flight, http.client, each answer parsed by the job's quick
           Quay reader (job.registries.quay_fast): the job's design with nothing else in it;
  loop     one asyncio event loop, each answer parsed by the same reader.

    .venv/bin/python bench/bench_scan_floor.py                       # at concurrency 32 and 64
    .venv/bin/python bench/bench_scan_floor.py --concurrency 64 --modes limit,loop

Printed per mode and concurrency: wall time against the ideal (manifests / concurrency x latency),
the client's CPU per answer and how much of it was in the kernel, and the simulator's CPU.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import queue
import shutil
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import bench_play  # noqa: E402
import synth  # noqa: E402
from bench_scan import process_cpu  # noqa: E402
from job.registries import quay_fast  # noqa: E402
from job.registries.quay import Reader  # noqa: E402

Fetch = tuple[str, str]  # (host:port, path)
HEADERS = {"User-Agent": "imvjob-floor", "Accept": "application/json"}


def security_path(repository: str, digest: str) -> str:
    namespace, _, name = repository.partition("/")
    return (f"/api/v1/repository/{quote(namespace, safe='')}/{quote(name, safe='/')}/manifest/{digest}/security"
            "?vulnerabilities=true")


def with_threads(fetches: list[Fetch], concurrency: int, tls: ssl.SSLContext) -> int:
    """Each thread keeps a connection per host and takes the next fetch when it is done."""
    todo: queue.SimpleQueue[Fetch | None] = queue.SimpleQueue()
    for fetch in fetches:
        todo.put(fetch)
    for _ in range(concurrency):
        todo.put(None)
    reader, parsed, lock = Reader(vulnerable_only=True), [0], threading.Lock()

    def work() -> None:
        connections: dict[str, http.client.HTTPSConnection] = {}
        while (fetch := todo.get()) is not None:
            host, path = fetch
            connection = connections.get(host)
            if connection is None:
                name, port = host.rsplit(":", 1)
                connection = connections[host] = http.client.HTTPSConnection(name, int(port), context=tls)
            connection.request("GET", path, headers=HEADERS)
            if quay_fast.read_scanned(connection.getresponse().read(), reader) is not None:
                with lock:
                    parsed[0] += 1

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return parsed[0]


def with_loop(fetches: list[Fetch], concurrency: int, tls: ssl.SSLContext, *, parse: bool) -> int:
    """`concurrency` tasks on one event loop, each keeping a connection per host."""
    reader, parsed = Reader(vulnerable_only=True), [0]
    request = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())

    async def work(todo: list[Fetch]) -> None:
        connections: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        while todo:
            host, path = todo.pop()
            if host not in connections:
                name, port = host.rsplit(":", 1)
                connections[host] = await asyncio.open_connection(name, int(port), ssl=tls, server_hostname=name)
            stream, writer = connections[host]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{request}\r\n".encode())
            head = await stream.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await stream.readexactly(length)
            if not parse or quay_fast.read_scanned(body, reader) is not None:
                parsed[0] += 1
        for _, writer in connections.values():
            writer.close()

    async def main() -> None:
        todo = fetches[::-1]
        await asyncio.gather(*(work(todo) for _ in range(concurrency)))

    asyncio.run(main())
    return parsed[0]


MODES: dict[str, Callable[[list[Fetch], int, ssl.SSLContext], int]] = {
    "limit": lambda f, c, t: with_loop(f, c, t, parse=False),
    "threads": with_threads,
    "loop": lambda f, c, t: with_loop(f, c, t, parse=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", type=int, default=3_000)
    parser.add_argument("--vulns", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--concurrency", default="32,64")
    parser.add_argument("--modes", default="limit,threads,loop")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="imvjob-bench-floor-"))
    sim_args = argparse.Namespace(plain_http=False, hosts=args.hosts, latency=args.latency, pods=1_000,
                                  manifests=args.manifests, vulns=args.vulns, seed=args.seed, churn=0.0, growth=0.0)
    registry = bench_play.Registry(sim_args, workdir)
    try:
        registry.wait_ready()
        cluster = synth.build(pods=1_000, manifests=args.manifests, vulns=args.vulns, hosts=args.hosts, seed=args.seed)
        fetches = [(registry.hosts[m.host], security_path(m.repository, m.digest))
                   for m in cluster.manifests[:args.manifests]]
        tls = ssl.create_default_context(cafile=registry.ca)
        print(f"{len(fetches):,} answers, {args.latency * 1000:.0f} ms latency, {len(registry.hosts)} hosts over HTTPS")
        print(f"  {'mode':<9}{'conc':>5}{'wall s':>9}{'wall/ideal':>12}{'CPU ms/answer':>15}{'of it kernel':>14}"
              f"{'sim CPU s':>11}  answers")
        for concurrency in (int(c) for c in args.concurrency.split(",") if c.strip()):
            ideal = len(fetches) / concurrency * args.latency
            for mode in args.modes.split(","):
                registry.command("reset")
                sim0 = process_cpu(registry.proc.pid)
                wall0, cpu0, kernel0 = time.perf_counter(), time.process_time(), os.times().system
                answers = MODES[mode](fetches, concurrency, tls)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                kernel, sim = os.times().system - kernel0, process_cpu(registry.proc.pid) - sim0
                print(f"  {mode:<9}{concurrency:>5}{wall:>9.2f}{wall / ideal:>11.2f}x{1000 * cpu / len(fetches):>15.2f}"
                      f"{1000 * kernel / len(fetches):>14.2f}{sim:>11.1f}  {answers:,}", flush=True)
        print(f"  load average at the end {bench_play.loadavg()}")
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
