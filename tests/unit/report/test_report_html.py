"""The HTML page as a file: self-contained, escaped, honest about coverage, bounded in size."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from job.model import ScanState
from job.report import build_context
from job.report.formats import short_digest
from job.report.html import LIMITS, render_html
from tests.factories import (FORMULA, JS_LINK, SCRIPT, make_feature, make_hostile_run, make_pod, make_ref,
                             make_result, make_settings, make_snapshot, make_vuln)


class Page(HTMLParser):
    """Every tag with its attributes, the text, and the content of script and style elements."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.code: list[str] = []
        self._in_code = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_code = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._in_code = False

    def handle_data(self, data):
        (self.code if self._in_code else self.text).append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def render(snapshot, results, **settings) -> str:
    ctx = build_context(snapshot=snapshot, results=results, outcome=None, previous=None,
                        settings=make_settings(**settings))
    return render_html(ctx)


def test_the_page_loads_nothing_from_anywhere():
    page = Page(render(*make_hostile_run()))
    for tag, attrs in page.tags:
        assert "src" not in attrs, (tag, attrs)
        if tag == "link":
            assert attrs["href"].startswith("data:"), attrs
        if tag == "a":
            assert attrs["href"].startswith(("#", "https://", "http://")), attrs
    assert [t for t, a in page.tags if t == "script"] == ["script"]  # our one inline script
    css_and_js = "".join(page.code)
    assert "url(" not in css_and_js and "@import" not in css_and_js
    assert "fetch(" not in css_and_js and "XMLHttpRequest" not in css_and_js


def test_hostile_registry_and_cluster_text_is_shown_as_text():
    html = render(*make_hostile_run())
    page = Page(html)
    assert SCRIPT in page.words  # visible, as text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert FORMULA.replace('"', "&#34;") in html or FORMULA in page.words
    hrefs = [a.get("href", "") for t, a in page.tags if t == "a"]
    assert "https://advisories.example/CVE-1" in hrefs
    assert not any("javascript" in h.lower() or h.startswith("data:") for h in hrefs)
    assert not any(t == "img" for t, _ in page.tags)
    assert "prod Bcc: evil@example.net" in page.words  # the CR/LF of the cluster name became a space


def test_nothing_scanned_is_said_first_and_loud():
    ref = make_ref("shop/web")
    html = render(make_snapshot([make_pod("shop", "web-1", ref)]),
                  {ref: make_result(ref, state=ScanState.UNAUTHORIZED, detail="401 from quay.io")})
    words = Page(html).words
    assert "No image could be scanned" in words
    assert "Nothing was scanned: this report cannot say whether these workloads are vulnerable" in words
    assert "401 from quay.io" in words
    assert "Every running image was scanned" not in words


def test_a_fully_scanned_clean_cluster_says_so():
    ref = make_ref("shop/web")
    words = Page(render(make_snapshot([make_pod("shop", "web-1", ref)]), {ref: make_result(ref)})).words
    assert "Every running image was scanned (1 of 1)" in words
    assert "No known vulnerabilities in 1 scanned image" in words


def test_large_runs_cap_the_detail_and_point_to_the_workbook_but_list_all_coverage():
    refs = [make_ref(f"team/app{i}") for i in range(LIMITS["images"] + 20)]
    unscanned = [make_ref(f"team/queued{i}") for i in range(LIMITS["workloads"] + 50)]
    pods = [make_pod("shop", f"app{i}-1", r, workload=("Deployment", f"app{i}")) for i, r in enumerate(refs)]
    pods += [make_pod("shop", f"q{i}-1", r, workload=("Deployment", f"q{i}")) for i, r in enumerate(unscanned)]
    results = {r: make_result(r, make_feature("pkg", "1", make_vuln(f"CVE-{i}", "High"))) for i, r in enumerate(refs)}
    results |= {r: make_result(r, state=ScanState.QUEUED, detail="queued") for r in unscanned}
    words = Page(render(make_snapshot(pods), results)).words

    assert f"The {LIMITS['images']} most vulnerable of {len(refs)} images are shown" in words
    assert f"The {LIMITS['groups']} most severe of {len(refs)} are shown" in words
    assert "sheet Vulnerabilities has every row" in words
    # Coverage is never capped: every image not scanned is named.
    assert all(f"{r.image} {short_digest(r.digest)}" in words for r in unscanned)


def test_the_trend_chart_names_each_run_by_day_or_by_time_within_a_day():
    from job.report.charts import trend
    from job.report.view import TrendPoint

    counts = (0, 0, 1, 2, 3, 4, 0)
    svg = trend((TrendPoint("2026-05-01T06:00:00Z", counts), TrendPoint("2026-05-02T06:00:00Z", counts),
                 TrendPoint("2026-05-02T18:30:00Z", counts), TrendPoint("", counts, current=True)))
    # Each bar: its total above, its run below.
    assert re.findall(r"<text[^>]*>([^<]*)</text>", str(svg)) == \
        ["10", "05-01", "10", "06:00", "10", "18:30", "10", "now"]
