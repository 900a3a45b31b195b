"""Debian's prometheus-pushgateway and prometheus on 127.0.0.1, each with a temporary storage path.

Prometheus scrapes the Pushgateway every second (honor_labels, as a Pushgateway must be
scraped), so a test pushes, then reads the series back through Prometheus's HTTP API.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from controlplane import unavailable

PUSHGATEWAY = "prometheus-pushgateway"
PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def binary(name: str) -> str:
    """The path of a Debian binary; fails in CI, skips elsewhere, when it is missing."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        unavailable(f"{name} is not installed (Debian packages prometheus and prometheus-pushgateway; "
                    "tests/system-deps.sh installs them)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    process: subprocess.Popen
    port: int
    log: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _start(args: list[str], port: int, log: Path, *, ready: str, scheme: str = "http",
           context=None) -> Service:
    handle = log.open("wb")
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    service = Service(process, port, log, scheme)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args[0]} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            opener = NO_PROXY if context is None else urllib.request.build_opener(
                urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
            with opener.open(f"{service.url}{ready}", timeout=2):
                return service
        except OSError:
            time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"{args[0]} not ready in 30 s: {log.read_text(errors='replace')[-2000:]}")


def start_pushgateway(folder: Path, *, web_config: Path | None = None, context=None) -> Service:
    port = free_port()
    args = [binary(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={folder / 'pushgateway.store'}"]
    if web_config is not None:
        args.append(f"--web.config.file={web_config}")
    # With TLS and basic auth (a web config), readiness is the port listening: /-/ready wants both too.
    if web_config is None:
        return _start(args, port, folder / "pushgateway.log", ready="/-/ready")
    handle = (folder / "pushgateway.log").open("wb")
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Service(process, port, folder / "pushgateway.log", "https")
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"pushgateway not listening: {(folder / 'pushgateway.log').read_text(errors='replace')}")


def start_prometheus(folder: Path, *, scrape: Service) -> Service:
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True,
                            "static_configs": [{"targets": [f"127.0.0.1:{scrape.port}"]}]}],
    }))
    args = [binary(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    return _start(args, port, folder / "prometheus.log", ready="/-/ready")


def query(prometheus: Service, promql: str) -> list[dict]:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with NO_PROXY.open(url, timeout=10) as response:
        doc = json.load(response)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def wait_for(prometheus: Service, promql: str, *, seconds: float = 20) -> list[dict]:
    """The query's result once it is not empty (Prometheus scrapes every second)."""
    deadline = time.monotonic() + seconds
    while True:
        result = query(prometheus, promql)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)
