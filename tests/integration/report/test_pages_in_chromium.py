"""A large cluster's report as pages per owner, in Chromium: an index, one page per owner group,
relative links that resolve, every row of each scope, nothing fetched, no overflow at 1440 or 390 px.
"""
from __future__ import annotations

import re

from job.report import build_context, write_reports
from tests.factories import make_settings
from tests.integration.report.browser import Server, browse, png_size
from tests.integration.report.cdp import Page
from tests.report_factories import LATE_OWNER, large_run


def write_large(out):
    snap, results = large_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    write_reports(ctx, out)
    return ctx


def test_a_large_cluster_gets_an_index_and_a_page_per_owner(chromium, tmp_path):
    out = tmp_path / "out"
    ctx = write_large(out)
    pages = sorted(p.relative_to(out).as_posix() for p in (out / "owners").glob("*.html"))
    assert len(pages) == 2 and any("late-team" in p for p in pages)
    index = (out / "report.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"#][^"]*)"', index)
    assert sorted(h for h in hrefs if h.startswith("owners/")) == pages  # relative, and each resolves
    with Server(out) as server:
        dom, requests = browse(chromium, f"{server.origin}/report.html", tmp_path, "--dump-dom")
        assert requests == []
        for page in pages:
            html, requests = browse(chromium, f"{server.origin}/{page}", tmp_path, "--dump-dom")
            assert requests == [] and 'href="../report.html"' in html
            assert "data-total=" not in html  # no table cut: every row of the owner's scope is there
    late = next(p for p in pages if "late-team" in p)
    late_html = (out / late).read_text(encoding="utf-8")
    assert late_html.count("Deployment/tool-") >= 20 and "shop-team@example.com" not in late_html
    shop = next(p for p in pages if "shop-team" in p)
    shop_html = (out / shop).read_text(encoding="utf-8")
    assert all(f"Deployment/web{i}-{n}" in shop_html for i in range(4) for n in range(80))
    assert ctx.artifacts["pages"] == out / "owners"


def test_a_small_cluster_keeps_one_page_and_stale_owner_pages_go(report_dir, tmp_path):
    assert not (report_dir / "owners").exists()
    out = tmp_path / "out"
    write_large(out)
    assert list((out / "owners").glob("*.html"))
    from tests.integration.report.conftest import report_run

    snap, results = report_run()
    write_reports(build_context(snapshot=snap, results=results, outcome=None, previous=None,
                                settings=make_settings()), out)
    assert list((out / "owners").glob("*.html")) == []
    assert "owners/" not in (out / "report.html").read_text(encoding="utf-8")


def test_index_and_owner_pages_fit_a_desktop_and_a_phone(chromium, tmp_path):
    out = tmp_path / "out"
    write_large(out)
    owner = next((out / "owners").glob("late-team*.html")).relative_to(out).as_posix()
    with Server(out) as server, Page(chromium, f"{server.origin}/report.html", tmp_path) as page:
        for path in ("report.html", owner):
            for width in (1440, 390):
                page.viewport(width, 1000, mobile=width < 500)
                page.goto(f"{server.origin}/{path}")
                shot = page.screenshot(tmp_path / f"{path.replace('/', '_')}-{width}.png")
                assert png_size(shot) == (width, 1000)
                overflow = page.js("document.documentElement.scrollWidth")
                assert overflow <= width, (path, width, overflow)
                # What sticks out of its section is cut or scrolls inside it, never widens the page.
                wide = page.js(f"Array.from(document.querySelectorAll('header, nav, section, .cards, .charts, "
                               f".alert')).filter(e => e.getBoundingClientRect().right > {width} + 0.5)"
                               f".map(e => e.id || e.className)")
                assert wide == [], (path, width, wide)
                assert LATE_OWNER in page.js("document.body.innerText")
