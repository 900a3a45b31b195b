"""The exploited-in-the-wild feeds: CISA KEV (JSON) and FIRST EPSS (CSV), from a file or an https URL.

A feed is a hint for ranking, never a reason to stop: a missing, stale or malformed one is
reported in every output and the run goes on without it (or with it, when only stale). Both are
untrusted input: sizes are capped, types checked, and of EPSS (about 300,000 rows) only the CVEs
the run's findings name are kept.
"""
from __future__ import annotations

import io
import re
import time
import urllib.request
import zlib
from typing import Iterable
from urllib.parse import urlsplit

import orjson

from job.files import NotRegularFile, TooLarge, read_regular
from job.model import ScanResult
from job.triage import Feeds, FeedStatus, KevEntry, day_of, iso_day, wanted_cves

#: The real KEV catalogue is about 1.5 MB, the EPSS CSV about 10 MB (2 MB gzipped).
MAX_KEV_BYTES = 32 << 20
MAX_EPSS_BYTES = 64 << 20
#: Seconds a feed's URL may take in all, the whole body read.
FETCH_DEADLINE = 60.0
_EPSS_META = re.compile(rb"([a-z_]+):([^,\s]*)")


class FeedError(Exception):
    """A feed could not be read: the state ("missing", "malformed") and why."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__(detail)
        self.state = state


# --- parsing (pure) ------------------------------------------------------------------------------


def parse_kev(data: bytes, *, source: str, today: int, max_age_days: int) -> tuple[dict[str, KevEntry], FeedStatus]:
    """The catalogue's CVEs with their due date and ransomware flag. Raises FeedError("malformed")."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FeedError("malformed", f"not JSON ({str(exc)[:80]})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("vulnerabilities"), list):
        raise FeedError("malformed", "not a KEV catalogue (no vulnerabilities list)")
    entries: dict[str, KevEntry] = {}
    skipped = 0
    for item in doc["vulnerabilities"]:
        cve = item.get("cveID") if isinstance(item, dict) else None
        if not isinstance(cve, str) or not cve.upper().startswith("CVE-") or len(cve) > 24:
            skipped += 1
            continue
        due = item.get("dueDate")
        entries[cve.strip().upper()] = KevEntry(
            day_of(due) if isinstance(due, str) else 0,
            item.get("knownRansomwareCampaignUse") == "Known")
    released = doc.get("dateReleased")
    date = iso_day(day_of(released)) if isinstance(released, str) else ""
    return entries, _status("KEV", source, date, len(entries), skipped, today=today, max_age_days=max_age_days)


def parse_epss(data: bytes, *, wanted: set[str], source: str, today: int,
               max_age_days: int) -> tuple[dict[str, float], FeedStatus]:
    """EPSS scores of the wanted CVEs only. Raises FeedError("malformed") without the header line."""
    want = {c.encode("ascii") for c in wanted}
    lines = io.BytesIO(data)
    meta: dict[bytes, bytes] = {}
    header = lines.readline(4096)
    while header.startswith(b"#"):
        meta.update(_EPSS_META.findall(header.lower()))
        header = lines.readline(4096)
    if header.strip().lower().split(b",")[:2] != [b"cve", b"epss"]:
        raise FeedError("malformed", "not an EPSS CSV (no 'cve,epss,percentile' header)")
    scores: dict[str, float] = {}
    rows = skipped = 0
    for line in lines:
        rows += 1
        cve, _, rest = line.partition(b",")
        if cve not in want:
            continue  # the cheap test first: nearly every row is about a CVE this cluster does not have
        try:
            score = float(rest.partition(b",")[0])
        except ValueError:
            skipped += 1
            continue
        if 0.0 <= score <= 1.0:
            scores[cve.decode("ascii")] = score
        else:
            skipped += 1
    if rows == 0:
        raise FeedError("malformed", "an EPSS CSV without rows")
    date = iso_day(day_of(meta.get(b"score_date", b"").decode("ascii", "replace")))
    return scores, _status("EPSS", source, date, rows, skipped, today=today, max_age_days=max_age_days)


def _status(name: str, source: str, date: str, entries: int, skipped: int, *, today: int,
            max_age_days: int) -> FeedStatus:
    note = f"; {skipped:,} malformed entries skipped" if skipped else ""
    if not date:
        return FeedStatus(name, source, "stale", "the feed carries no date: its age is unknown" + note, "", entries)
    age = today - day_of(date)
    if age > max_age_days:
        return FeedStatus(name, source, "stale", f"{age} days old (older than {max_age_days}): still used, "
                                                 f"but refresh it" + note, date, entries)
    return FeedStatus(name, source, "ok", f"{entries:,} entries" + note, date, entries)


# --- reading (I/O) ---------------------------------------------------------------------------------


def read_source(source: str, *, max_bytes: int, deadline: float = FETCH_DEADLINE, ssl_context=None) -> bytes:
    """A feed's bytes from a file or an https URL, gunzipped, at most max_bytes. Raises FeedError."""
    if "://" in source:
        data = _fetch(source, max_bytes=max_bytes, deadline=deadline, ssl_context=ssl_context)
    else:
        data = _read_file(source, max_bytes=max_bytes)
    if data[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(wbits=31)
            data = inflater.decompress(data, max_bytes + 1)
        except zlib.error as exc:
            raise FeedError("malformed", f"a broken gzip file ({exc})") from exc
        if len(data) > max_bytes:
            raise FeedError("malformed", f"larger than {max_bytes >> 20} MiB once uncompressed")
    return data


def _read_file(path: str, *, max_bytes: int) -> bytes:
    try:
        return read_regular(path, max_bytes=max_bytes)
    except NotRegularFile as exc:
        raise FeedError("missing", f"{path} is not a regular file") from exc
    except TooLarge as exc:
        raise FeedError("malformed", f"larger than {max_bytes >> 20} MiB") from exc
    except OSError as exc:
        raise FeedError("missing", f"cannot read {path}: {exc.strerror}") from exc


def _fetch(url: str, *, max_bytes: int, deadline: float, ssl_context) -> bytes:
    import urllib3

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise FeedError("missing", "only https URLs are fetched")
    end = time.monotonic() + deadline
    proxy = urllib.request.getproxies().get("https")
    if proxy and urllib.request.proxy_bypass(parts.hostname):
        proxy = None
    kw = {"ssl_context": ssl_context, "retries": False,
          "timeout": urllib3.Timeout(connect=min(10.0, deadline), read=min(30.0, deadline))}
    pool = urllib3.ProxyManager(proxy, **kw) if proxy else urllib3.PoolManager(**kw)
    try:
        resp = pool.request("GET", url, preload_content=False, redirect=False)
        try:
            if resp.status != 200:
                raise FeedError("missing", f"HTTP {resp.status}")
            chunks, size = [], 0
            # read1 returns what has arrived: a body sent a byte at a time still meets the deadline.
            while chunk := resp.read1(1 << 16, decode_content=False):
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError("malformed", f"larger than {max_bytes >> 20} MiB")
                if time.monotonic() > end:
                    raise FeedError("missing", f"not read in full within {deadline:.0f} s")
                chunks.append(chunk)
        finally:
            resp.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise FeedError("missing", f"cannot fetch: {type(exc).__name__}") from exc
    finally:
        pool.clear()
    return b"".join(chunks)


def shown_source(source: str) -> str:
    """A feed's source as reports show it: a URL without user, password, query or fragment."""
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
        port = parts.port
    except ValueError:
        return "(not a URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{f':{port}' if port else ''}{parts.path}"


def load(*, kev_source: str, epss_source: str, results: Iterable[ScanResult], today: int, max_age_days: int,
         ssl_context=None, deadline: float = FETCH_DEADLINE) -> Feeds:
    """Both feeds, for the findings of these scan results; never raises for a feed's sake."""
    kev: dict[str, KevEntry] = {}
    epss: dict[str, float] = {}
    status = []
    for name, source in (("KEV", kev_source), ("EPSS", epss_source)):
        shown = shown_source(source)
        if not source:
            status.append(FeedStatus(name, "", "not configured"))
            continue
        try:
            if name == "KEV":
                data = read_source(source, max_bytes=MAX_KEV_BYTES, deadline=deadline, ssl_context=ssl_context)
                kev, st = parse_kev(data, source=shown, today=today, max_age_days=max_age_days)
            else:
                data = read_source(source, max_bytes=MAX_EPSS_BYTES, deadline=deadline, ssl_context=ssl_context)
                wanted = wanted_cves(f for r in results if r.report is not None for f in r.report.vulnerable_features)
                epss, st = parse_epss(data, wanted=wanted, source=shown, today=today, max_age_days=max_age_days)
            del data
        except FeedError as exc:
            st = FeedStatus(name, shown, exc.state, str(exc))
        except (MemoryError, RecursionError, UnicodeError) as exc:
            st = FeedStatus(name, shown, "malformed", f"unreadable ({type(exc).__name__})")
        status.append(st)
    return Feeds(kev, epss, tuple(status))
