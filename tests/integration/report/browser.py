"""Headless Chromium for the report tests (and bench/bench_reports.py): its flags, a local server that
remembers every request, a one-shot run with Chromium's network log as witness, and readers of what
it returns (the page's text and tags, a screenshot's size).
"""
from __future__ import annotations

import http.server
import json
import struct
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars"]


class Server:
    """Serves one folder on 127.0.0.1 and remembers every request."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):
                seen.append(f"GET {self.path}")
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def browse(chromium: str, url: str, tmp: Path, *mode: str) -> tuple[str, list[str]]:
    """Run Chromium once on url; return its stdout and the URLs the page itself requested."""
    origin = url.split("/", 3)[:3]
    net_log = tmp / f"net-{len(list(tmp.glob('net-*')))}.json"
    profile = tmp / f"profile-{net_log.stem}"
    done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--log-net-log={net_log}", *mode, url],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, page_requests(net_log, "/".join(origin))


def page_requests(net_log: Path, origin: str) -> list[str]:
    """URLs whose request the page at origin started (the browser's own traffic has no page as initiator)."""
    log = json.loads(net_log.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start_job and params.get("initiator") == origin:
            urls.append(params["url"])
    return urls


class Text(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self._skip = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip = False

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.parts).split())


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])
