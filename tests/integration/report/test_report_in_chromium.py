"""report.html in headless Chromium: what a person sees, and that the page fetches nothing.

The page is served from a local HTTP server. Chromium's own network log tells which requests the
page started (they carry the page as initiator) apart from the browser's background traffic, and
the server tells which requests reached it: only the page itself may appear in either.
"""
from __future__ import annotations

from tests.factories import SCRIPT
from tests.integration.report.browser import Server, Text, browse, png_size


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

