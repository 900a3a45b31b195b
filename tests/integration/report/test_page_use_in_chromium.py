"""What a person does with the page in Chromium: sort, filter a cut table, tab, read colours, print.

And the mail on a phone. Each test drives a real headless Chromium over the DevTools protocol.
"""
from __future__ import annotations

import json
import re

import pytest

from job.notify.message import build_message
from job.report import build_context, write_reports
from tests.factories import make_settings
from tests.integration.report.browser import Server
from tests.integration.report.cdp import Page
from tests.report_factories import LATE_OWNER, large_run


@pytest.fixture(scope="module")
def large_dir(tmp_path_factory):
    snap, results = large_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    out = tmp_path_factory.mktemp("large") / "out"
    write_reports(ctx, out)
    return out


@pytest.fixture(scope="module")
def page(chromium, large_dir, tmp_path_factory):
    """The large cluster's index page (report.html); an owner page is a relative link away."""
    with Server(large_dir) as server, Page(chromium, f"{server.origin}/report.html",
                                           tmp_path_factory.mktemp("cdp")) as p:
        p.origin = server.origin
        yield p


def owner_page(page: Page, owner: str) -> None:
    """Follow the index's link to an owner's page, as a person clicks it."""
    page.goto(f"{page.origin}/report.html")
    href = page.js(f"Array.from(document.querySelectorAll('#pages a')).find(a => a.textContent.includes("
                   f"{json.dumps(owner)})).href")
    page.goto(href)


def column(page: Page, table: str, index: int) -> list[str]:
    return page.js(f"Array.from(document.querySelectorAll({json.dumps(table)} + ' > tbody > tr'))"
                   f".map(r => r.cells[{index}].textContent.trim())")


def sort_by(page: Page, table: str, index: int) -> None:
    page.js(f"(th => (th.querySelector('button') || th).click())"
            f"(document.querySelectorAll({json.dumps(table + ' thead th')})[{index}])")


def test_numbers_sort_by_value(page):
    owner_page(page, "shop-team@example.com")
    vulns = "#vulnerabilities table[data-table]"
    head = page.js(f"Array.from(document.querySelectorAll('{vulns} thead th')).map(t => t.textContent.trim())")
    cvss = [i for i, h in enumerate(head) if h.startswith("CVSS")][0]
    sort_by(page, vulns, cvss)
    values = [v for v in column(page, vulns, cvss) if v]
    assert values == sorted(values, key=float, reverse=True) and values[0] == "10.0", values
    sort_by(page, vulns, cvss)
    values = [v for v in column(page, vulns, cvss) if v]
    assert values == sorted(values, key=float), values
    # Counts with thousands separators and "N days" sort as numbers too.
    pods = "#images table[data-table]"
    sort_by(page, pods, 5)
    counts = [int(v.replace(",", "")) for v in column(page, pods, 5)]
    assert counts == sorted(counts, reverse=True)
    page.goto(f"{page.origin}/report.html")


def test_a_filter_on_a_cut_table_says_where_the_rest_is(page):
    page.type("#actions .tools input", LATE_OWNER)
    shown = page.js("document.querySelector('#actions .tools .shown').textContent")
    assert not re.fullmatch(r"0 of [\d,]+ rows", shown), shown
    assert "240 more rows are not on this page" in shown, shown
    assert "the owners' pages and the workbook's sheet Workloads" in shown, shown
    page.js("(i => { i.value = ''; i.dispatchEvent(new Event('input')); })"
            "(document.querySelector('#actions .tools input'))")


def test_headers_sort_from_the_keyboard_and_say_so(page):
    table = "#actions table[data-table]"
    page.js("document.querySelector('#actions .tools input').focus()")
    page.key("Tab", "Tab", 9)
    focused = page.js("[document.activeElement.tagName, document.activeElement.closest('th') !== null]")
    assert focused == ["BUTTON", True]
    assert page.js(f"document.querySelector('{table} thead th').getAttribute('aria-sort')") is None
    page.key("Enter", "Enter", 13)
    assert page.js(f"document.querySelector('{table} thead th').getAttribute('aria-sort')") == "descending"
    page.key("Enter", "Enter", 13)
    assert page.js(f"document.querySelector('{table} thead th').getAttribute('aria-sort')") == "ascending"


CONTRAST = """
(el => {
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = rgb(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92
      : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  let bg = el, s;
  while (bg && (s = getComputedStyle(bg).backgroundColor) && (s === 'transparent' || s.endsWith(', 0)')))
    bg = bg.parentElement;
  const a = lum(getComputedStyle(el).color), b = lum(bg ? s : 'rgb(255,255,255)');
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
})
"""


def test_severity_colours_and_footer_meet_wcag_aa(chromium, report_dir, tmp_path):
    with Server(report_dir) as server, Page(chromium, f"{server.origin}/report.html", tmp_path) as p:
        ratios = p.js(f"Array.from(document.querySelectorAll('.sev, .counts span[title], footer'))"
                      f".map(e => [e.textContent.trim().slice(0, 20), ({CONTRAST})(e)])")
    low = [(text, round(r, 2)) for text, r in ratios if r < 4.5]
    assert ratios and not low, low


def test_the_coverage_subject_is_readable(chromium, report_dir, tmp_path):
    """The Subject (an image and its digest) keeps room for ~24 characters a line, even on a narrow window."""
    with Server(report_dir) as server, Page(chromium, f"{server.origin}/report.html", tmp_path) as p:
        char = p.js("(() => { const s = document.createElement('span'); s.className = 'mono small';"
                    "s.textContent = 'x'.repeat(10); document.querySelector('#coverage').appendChild(s);"
                    "return s.getBoundingClientRect().width / 10; })()")
        for width in (1280, 800, 390):
            p.viewport(width, 900)
            narrowest = p.js("Math.min(...Array.from(document.querySelectorAll('#coverage tbody tr'))"
                             ".map(r => r.cells[1].getBoundingClientRect().width))")
            assert narrowest >= 24 * char, (width, narrowest, char)


def test_the_mail_fits_a_phone(chromium, report_dir, tmp_path):
    from job.report import build_context as _unused  # noqa: F401 - the context comes from the report run
    from tests.integration.report.conftest import report_run

    snap, results = report_run()
    ctx = build_context(snapshot=snap, results=results, outcome=None, previous=None, settings=make_settings())
    msg = build_message(ctx, sender="imvjob@example.com", recipient="sec@example.com", attachments=[])
    html = msg.get_body(("html",)).get_content()
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "mail.html").write_text(html, encoding="utf-8")
    with Server(tmp_path / "mail") as server, Page(chromium, f"{server.origin}/mail.html", tmp_path,
                                                   width=390, height=800) as p:
        p.viewport(390, 800, mobile=True)
        p.goto(f"{server.origin}/mail.html")
        width = p.js("document.documentElement.scrollWidth")
    assert width <= 390, width


# Printable widths in CSS px (96 a inch) with the page's 10 mm margins, landscape.
PAPERS = {"A4": ((8.27, 11.69), 1047), "Letter": ((8.5, 11.0), 980)}


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_the_page_prints_every_column_without_sort_arrows(page, paper):
    (width_in, height_in), printable = PAPERS[paper]
    pdf = page.pdf(paperWidth=width_in, paperHeight=height_in, preferCSSPageSize=True, printBackground=True)
    boxes = {tuple(float(n) for n in box) for box in
             re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)}
    assert boxes and all(w > h for w, h in boxes), boxes  # landscape: the tables are wide
    page.send("Emulation.setEmulatedMedia", media="print")
    try:
        page.viewport(printable, 1400)
        clipped = page.js("Array.from(document.querySelectorAll('th, td'))"
                          ".filter(c => c.closest('table[data-table]') && c.getBoundingClientRect().right > "
                          f"{printable} + 0.5).map(c => c.textContent.trim().slice(0, 30)).slice(0, 5)")
        arrows = page.js("Array.from(document.querySelectorAll('th button.sort'))"
                         ".map(b => getComputedStyle(b, '::after').content).filter(c => c !== 'none' && c !== 'normal')")
        heads = page.js("Array.from(document.querySelectorAll('#actions thead th')).map(t => t.textContent.trim())")
    finally:
        page.send("Emulation.setEmulatedMedia", media="")
        page.viewport(1280, 900)
    assert "Fixable" in heads and "Update to" in heads
    assert clipped == [], clipped
    assert arrows == [], arrows
