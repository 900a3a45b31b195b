"""KEV and EPSS feeds: read from files in their real formats; a bad feed is a status, never a failed run."""
from __future__ import annotations

import datetime as dt
import gzip
import os

from job import feeds
from job.triage import KevEntry
from tests.factories import make_feature, make_ref, make_result, make_vuln
from tests.feed_files import epss_text, write_epss, write_kev

TODAY = dt.date(2026, 5, 4).toordinal()
RESULTS = [make_result(make_ref(), make_feature("openssl", "3.0.1", make_vuln("CVE-2024-0001"),
                                                 make_vuln("CVE-2024-0002")))]


def load(tmp_path, *, kev="", epss="", results=RESULTS):
    return feeds.load(kev_source=kev, epss_source=epss, results=results, today=TODAY, max_age_days=7)


def test_both_feeds_in_their_real_formats(tmp_path):
    kev = write_kev(tmp_path / "kev.json", {"CVE-2024-0001": ("2026-05-10", True), "CVE-2020-9999": ("2020-01-01", False)})
    epss = write_epss(tmp_path / "epss.csv", {"CVE-2024-0001": 0.97, "CVE-2024-0002": 0.0004, "CVE-1999-0001": 0.5})
    got = load(tmp_path, kev=str(kev), epss=str(epss))

    assert got.kev["CVE-2024-0001"] == KevEntry(dt.date(2026, 5, 10).toordinal(), True)
    assert got.kev["CVE-2020-9999"].ransomware is False
    assert got.epss == {"CVE-2024-0001": 0.97, "CVE-2024-0002": 0.0004}  # only what the findings name
    assert [(s.name, s.state, s.date) for s in got.status] == [("KEV", "ok", "2026-05-03"), ("EPSS", "ok", "2026-05-03")]


def test_no_feed_configured_is_said_and_changes_nothing(tmp_path):
    got = load(tmp_path)
    assert not got.kev and not got.epss
    assert [s.state for s in got.status] == ["not configured", "not configured"]
    assert not any(s.problem for s in got.status)


def test_a_stale_feed_is_used_and_reported(tmp_path):
    kev = write_kev(tmp_path / "kev.json", {"CVE-2024-0001": ("2026-05-10", False)}, released="2026-04-01T00:00:00Z")
    epss = tmp_path / "epss.csv"
    epss.write_text("cve,epss,percentile\nCVE-2024-0001,0.5,0.9\n")  # no comment line: no date
    got = load(tmp_path, kev=str(kev), epss=str(epss))
    assert "CVE-2024-0001" in got.kev and got.epss == {"CVE-2024-0001": 0.5}
    kev_status, epss_status = got.status
    assert kev_status.state == "stale" and "33 days old" in kev_status.detail
    assert epss_status.state == "stale" and "no date" in epss_status.detail


def test_malformed_and_missing_feeds_are_reported_and_not_used(tmp_path):
    bad_kev = tmp_path / "kev.json"
    bad_kev.write_text('{"vulnerabilities": {"CVE-2024-0001": 1}}')
    bad_epss = tmp_path / "epss.csv"
    bad_epss.write_text("<html>mirror error</html>\n")
    got = load(tmp_path, kev=str(bad_kev), epss=str(bad_epss))
    assert not got.kev and not got.epss
    assert [s.state for s in got.status] == ["malformed", "malformed"]

    got = load(tmp_path, kev=str(tmp_path / "nope.json"), epss=str(tmp_path))
    assert [s.state for s in got.status] == ["missing", "missing"]
    assert "No such file" in got.status[0].detail


def test_wrong_types_inside_a_feed_are_skipped_one_by_one(tmp_path):
    kev = tmp_path / "kev.json"
    kev.write_text('{"dateReleased": 7, "vulnerabilities": [1, null, {"cveID": 5}, {"cveID": "CVE-2024-0001",'
                   ' "dueDate": ["x"], "knownRansomwareCampaignUse": {"a": 1}}]}')
    epss = tmp_path / "epss.csv"
    epss.write_text(epss_text({}) + "CVE-2024-0001,NaNx,1\nCVE-2024-0002,7.5,1\nCVE-2024-0001\n\xff\xfe,,\n")
    got = load(tmp_path, kev=str(kev), epss=str(epss))
    assert got.kev == {"CVE-2024-0001": KevEntry(0, False)}
    assert got.epss == {}
    assert "3 malformed entries skipped" in got.status[0].detail
    assert "2 malformed entries skipped" in got.status[1].detail


def test_oversized_and_gzip_bomb_feeds_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(feeds, "MAX_EPSS_BYTES", 1 << 20)
    big = tmp_path / "epss.csv"
    big.write_bytes(b"x" * ((1 << 20) + 10))
    bomb = tmp_path / "epss.csv.gz"
    bomb.write_bytes(gzip.compress(epss_text({}).encode() + b"CVE-1,0.1,0.1\n" * 200_000))
    for path in (big, bomb):
        st = load(tmp_path, epss=str(path)).status[1]
        assert (st.state, st.detail) == ("malformed", "larger than 1 MiB" + (" once uncompressed" if path is bomb else ""))


def test_a_gzipped_epss_file_is_read_as_first_serves_it(tmp_path):
    gz = tmp_path / "epss.csv.gz"
    gz.write_bytes(gzip.compress(epss_text({"CVE-2024-0002": 0.25}).encode()))
    assert load(tmp_path, epss=str(gz)).epss == {"CVE-2024-0002": 0.25}


def test_a_fifo_is_not_waited_on(tmp_path):
    fifo = tmp_path / "kev.json"
    os.mkfifo(fifo)
    st = load(tmp_path, kev=str(fifo)).status[0]
    assert st.state == "missing" and "not a regular file" in st.detail


def test_urls_are_shown_without_credentials_and_only_https_is_fetched(tmp_path):
    assert feeds.shown_source("https://u:secret@mirror.corp:8443/kev.json?token=x") == "https://mirror.corp:8443/kev.json"
    st = load(tmp_path, kev="http://mirror.corp/kev.json").status[0]
    assert (st.state, st.detail) == ("missing", "only https URLs are fetched")
