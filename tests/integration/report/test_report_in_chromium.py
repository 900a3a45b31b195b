"""report.html in headless Chromium: what a person sees, and that the page fetches nothing.

The page is served from a local HTTP server. Chromium's own network log tells which requests the
page started (they carry the page as initiator) apart from the browser's background traffic, and
the server tells which requests reached it: only the page itself may appear in either.
"""
from __future__ import annotations

import http.server
import json
import struct
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path


from tests.factories import SCRIPT

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


def test_a_person_reads_the_report_and_the_page_fetches_nothing(chromium, report_dir, tmp_path):
    with Server(report_dir) as server:
        url = f"{server.origin}/report.html"
        dom, dom_requests = browse(chromium, url, tmp_path, "--dump-dom")
        shot = tmp_path / "report.png"
        _out, shot_requests = browse(chromium, url, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")

    assert server.requests == ["GET /report.html", "GET /report.html"]  # no favicon, no asset, nothing else
    assert dom_requests == [] and shot_requests == []
    assert png_size(shot) == (1280, 2000) and shot.stat().st_size > 50_000

    page = Text(dom)
    words = page.words
    for seen in ("3 Critical and 3 High of 8 vulnerabilities", "What to do", "shop-team@example.com",
                 "payments@example.com",
                 "StatefulSet/db", "openssl 3.0.1 → 3.0.13", "CVE-2024-0727", "registry.local:5000/ops/agent",
                 "connection refused after 4 retries", "not scanned", "no previous run to compare with",
                 "status has no containerStatuses"):
        assert seen in words, seen
    assert SCRIPT in words  # registry text shows as text ...
    assert [t for t, _ in page.tags if t in ("script", "img", "iframe", "object", "embed")] == ["script"]  # ... only
    # The inline script ran (progressive enhancement): headers became sortable.
    assert any("sortable" in (a.get("class") or "") for t, a in page.tags if t == "th")


def test_the_request_check_does_see_a_page_that_fetches(chromium, tmp_path):
    """The check above can fail: a page with outside references is caught by both witnesses."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "leaky.html").write_text(
        '<!DOCTYPE html><img src="http://leak.example/pixel.png"><img src="/local.png">'
        '<link rel="stylesheet" href="https://fonts.example/css">', encoding="utf-8")
    with Server(tmp_path / "site") as server:
        _dom, requests = browse(chromium, f"{server.origin}/leaky.html", tmp_path, "--dump-dom")
    assert "http://leak.example/pixel.png" in requests and "https://fonts.example/css" in requests
    assert "GET /local.png" in server.requests

