"""The scan cache: each manifest's last usable answer with the time it was fetched, so that a run
asks the registries only about the manifests that are new or due again (--rescan-after).

Only answers that say something about the image are kept: a scanned report for --rescan-after,
and "queued", "unsupported" or "not found" for a short recheck (RECHECK_SECONDS). A failure (the
registry's or the job's) is never kept: the next run asks again, and a failed scan is never
answered from an older report. The file is rewritten by every run from that run's manifests
only, so an entry lives at most one run longer than its manifest runs in the cluster.

`plan` and `next_entries` decide (pure); `load` and `save` read and write the file (I/O), which
is ignored with a reason, never fatal, when it is damaged, of another schema, or was written for
another cluster or other registry settings (`fingerprint`).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from job import __version__, codec
from job.errors import ConfigError
from job.files import NotRegularFile, TooLarge, read_regular
from job.model import ImageRef, ScanRequest, ScanResult, ScanState
from job.settings import Settings

SCHEMA = 1
FILE = "scan-cache.json.gz"
#: A registry that has not scanned a manifest yet usually has within minutes; asking again a
#: quarter of an hour later catches it at the next run or two of a frequent CronJob (every 10
#: minutes) without asking at every one. Never longer than --rescan-after.
RECHECK_SECONDS = 900.0
_RECHECK_STATES = (ScanState.QUEUED, ScanState.UNSUPPORTED, ScanState.NOT_FOUND)
#: Bounds of the file when read: gzip compresses a report about 10x; 3,000 manifests of ~70
#: vulnerabilities each write about 10 MB. A line is one manifest.
MAX_FILE_BYTES = 256 << 20
MAX_TEXT_BYTES = 4 << 30
MAX_LINE_BYTES = 64 << 20
_BATCH = 256  # lines decoded and checked at once: the cache is never held whole as JSON


@dataclass(frozen=True, slots=True)
class Entry:
    result: ScanResult
    fetched_at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Plan:
    """What this run asks the registries, and what it takes from the cache."""

    ask: list[ScanRequest]
    reused: dict[ImageRef, Entry]


def keep_for(result: ScanResult, rescan_after: float) -> float | None:
    """Pure: seconds an answer stays good, or None when it is never kept."""
    if result.state is ScanState.SCANNED and result.report is not None:
        return rescan_after
    if result.state in _RECHECK_STATES and result.report is None:
        return min(RECHECK_SECONDS, rescan_after)
    return None


def is_fresh(entry: Entry, *, now: float, rescan_after: float) -> bool:
    """Pure: a kept answer younger than its keep; one fetched "in the future" (a clock set back,
    a file edited) is not."""
    keep = keep_for(entry.result, rescan_after)
    age = now - entry.fetched_at
    return keep is not None and 0 <= age < keep


def plan(requests: Sequence[ScanRequest], cached: Mapping[ImageRef, Entry], *, now: float,
         rescan_after: float) -> Plan:
    """Pure: each request is answered from a fresh cache entry, else asked."""
    ask: list[ScanRequest] = []
    reused: dict[ImageRef, Entry] = {}
    for request in requests:
        entry = cached.get(request.ref)
        if entry is not None and entry.result.ref == request.ref and is_fresh(entry, now=now,
                                                                                rescan_after=rescan_after):
            reused[request.ref] = entry
        else:
            ask.append(request)
    return Plan(ask, reused)


def next_entries(reused: Mapping[ImageRef, Entry], answered: Mapping[ImageRef, ScanResult], *,
                 fetched_at: float) -> dict[ImageRef, Entry]:
    """Pure: the cache after this run: the entries it used, and its own answers that may be kept
    (a failure drops the manifest's entry: it is asked again next run). Nothing else: a manifest
    this run did not see leaves the cache."""
    out = dict(reused)
    for ref, result in answered.items():
        out.pop(ref, None)
        if keep_for(result, math.inf) is not None:
            out[ref] = Entry(result, fetched_at)
    return dict(sorted(out.items()))


def fingerprint(settings: Settings, *, cluster: str) -> str:
    """What a cached answer depends on besides its manifest: the cluster, the job's version, and
    the settings that choose the backend and the page a report links to."""
    parts = [SCHEMA, __version__, cluster, settings.clair_url, sorted(settings.clair_host), settings.clair_issuer,
             sorted(settings.harbor_host), sorted(settings.quay_token_host), sorted(settings.insecure_registry)]
    return hashlib.sha256(codec.encode_json(parts)).hexdigest()


def path_for(out: Path, shard: tuple[int, int] | None) -> Path:
    """One file per shard: each shard asks about its own manifests only."""
    return out / (FILE if shard is None else f"scan-cache.shard-{shard[0]}-of-{shard[1]}.json.gz")


# --- the file --------------------------------------------------------------------------------------


class Unusable(Exception):
    """The cache file cannot be used; the message says why, in plain words."""


def load(path: Path, *, key: str, wanted: Iterable[ImageRef]) -> tuple[dict[ImageRef, Entry], str]:
    """I/O: the entries of `wanted` manifests, and '' or why the file was ignored (no file: '')."""
    try:
        data = read_regular(path, max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError:
        return {}, ""
    except NotRegularFile as exc:
        return {}, f"it is {exc.kind}"
    except TooLarge:
        return {}, f"it is larger than {MAX_FILE_BYTES >> 20} MiB"
    except OSError as exc:
        return {}, f"cannot read it: {exc.strerror or exc}"
    try:
        return _entries(data, key=key, wanted=set(wanted)), ""
    except Unusable as exc:
        return {}, str(exc)
    except (OSError, EOFError, zlib.error, ValueError, ConfigError) as exc:  # gzip or JSON damaged
        return {}, f"it is damaged ({str(exc)[:200]})"


def _entries(data: bytes, *, key: str, wanted: set[ImageRef]) -> dict[ImageRef, Entry]:
    text = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
    head = codec.decode_json(_line(text) or b"null")
    if not isinstance(head, dict) or head.get("schema") != SCHEMA:
        raise Unusable(f"it is not of this version's schema ({SCHEMA})")
    if head.get("key") != key:
        raise Unusable("it was written for another cluster, job version or registry settings")
    out: dict[ImageRef, Entry] = {}
    batch: list[tuple[float, Any]] = []
    size = 0
    while True:
        line = _line(text)
        size += len(line)
        if size > MAX_TEXT_BYTES:
            raise Unusable(f"it holds more than {MAX_TEXT_BYTES >> 30} GiB")
        if line:
            item = codec.decode_json(line)
            if not isinstance(item, dict) or not isinstance(item.get("result"), dict):
                raise Unusable("it is damaged (an entry is not an object with a result)")
            at, doc = item.get("at"), item["result"]
            if not isinstance(at, (int, float)) or isinstance(at, bool) or not math.isfinite(at):
                raise Unusable("it is damaged (an entry has no fetch time)")
            ref = doc.get("ref")
            if isinstance(ref, list) and len(ref) == 3 and all(isinstance(x, str) for x in ref) \
                    and ImageRef(*ref) in wanted:
                batch.append((float(at), doc))
        if len(batch) >= _BATCH or (not line and batch):
            _convert(batch, out)
            batch = []
        if not line:
            return out


def _line(text: gzip.GzipFile) -> bytes:
    line = text.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise Unusable(f"an entry is larger than {MAX_LINE_BYTES >> 20} MiB")
    return line


def _convert(batch: list[tuple[float, Any]], out: dict[ImageRef, Entry]) -> None:
    # The stage file's reader checks each entry's shape (a wrong field: ConfigError).
    results = codec.results_from_doc({"version": codec.FORMAT_VERSION, "results": [doc for _, doc in batch]})
    if len(results) != len(batch):
        raise Unusable("it is damaged (a manifest appears twice)")
    for (at, _), result in zip(batch, results.values()):
        if result.ref in out:
            raise Unusable("it is damaged (a manifest appears twice)")
        if keep_for(result, math.inf) is None:  # a failure, or "scanned" without a report: never from a cache
            raise Unusable(f"it is damaged (an entry of state {result.state.value!r} cannot be kept)")
        out[result.ref] = Entry(result, at)


def save(path: Path, entries: Mapping[ImageRef, Entry], *, key: str) -> None:
    """I/O: the file, written whole or not at all (temporary file, then rename), one line per manifest."""
    with codec.atomic_open(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz:
        gz.write(codec.encode_json({"schema": SCHEMA, "key": key, "entries": len(entries)}) + b"\n")
        for ref, entry in entries.items():
            doc = codec.results_to_doc({ref: entry.result})["results"][0]
            gz.write(codec.encode_json({"at": entry.fetched_at, "result": doc}) + b"\n")
