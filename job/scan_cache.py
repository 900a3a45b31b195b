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

import contextlib
import gzip
import hashlib
import io
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from job import __version__, codec, stage_files
from job.files import NotRegularFile, TooLarge, capped_lines, read_regular
from job.memory import gc_paused
from job.model import ImageRef, ScanRequest, ScanResult, ScanState, VulnReport
from job.settings import Settings
from job.shapes import finite_number, misfit

SCHEMA = 3
FILE = "scan-cache.json.gz"
#: A registry that has not scanned a manifest yet usually has within minutes; asking again a
#: quarter of an hour later catches it at the next run or two of a frequent CronJob (every 10
#: minutes) without asking at every one. Never longer than --rescan-after.
RECHECK_SECONDS = 900.0
_RECHECK_STATES = (ScanState.QUEUED, ScanState.UNSUPPORTED, ScanState.NOT_FOUND)
#: Bounds of the file when read. 3,000 manifests write about 2.4 MB (BENCHMARKS.md), some 15 MB
#: once unzipped. What reading holds is up to 4x the text (a list of numbers becomes a tuple of
#: 8-byte pointers): the bounds keep the worst a file of a few kB can unzip to within the
#: CronJob's 768 MiB, so that a damaged or planted file is ignored, never a run killed, and every
#: run after it, before it can be rewritten.
MAX_FILE_BYTES = 32 << 20
MAX_TEXT_BYTES = 128 << 20
MAX_LINE_BYTES = 16 << 20
#: What reading the file may hold at most, for the test that keeps it under the pod's memory limit.
WORST_HELD_BYTES = MAX_FILE_BYTES + 4 * MAX_TEXT_BYTES


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


_NAME = re.compile(r"scan-cache(?:\.shard-\d+-of-(\d+))?\.json\.gz")


def forget_other_layouts(out: Path, shard: tuple[int, int] | None) -> None:
    """I/O: removes the files of another shard layout (unsharded, or another shard count). No run
    of this layout rewrites them, so, were the layout to come back, one could answer for a manifest
    that has left the cluster since. Without them, those manifests are only asked about again."""
    count = None if shard is None else str(shard[1])
    for path in out.glob("scan-cache*.json.gz"):
        match = _NAME.fullmatch(path.name)
        if match and match.group(1) != count:
            with contextlib.suppress(OSError):
                path.unlink()


# --- the file --------------------------------------------------------------------------------------
# Gzipped JSON lines: a head {"schema", "key", "entries"}, then each manifest's line {"at": fetch
# time, "ref", "state", "detail", "backend", "pageUrl", "ns": the report's namespace or null when
# there is no report, "packages": [numbers]}. Each advisory ({"advisory": ...}) and each package
# ({"package": ..., its "vulnerabilities" as numbers}) is written once, on a line of its own
# before the first line that uses it; its number is its place among the lines of its kind.
# Images share most of their packages and advisories, as the registries' answers do (the
# registries' reader builds each once): written once, read back once, held once.


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
        with gc_paused():  # many small objects, no cycles: see job.memory
            return _Reader(wanted).read(data, key=key), ""
    except Unusable as exc:
        return {}, str(exc)
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # gzip or JSON damaged
        return {}, f"it is damaged ({str(exc)[:200]})"


def _damaged(what: str) -> Unusable:
    return Unusable(f"it is damaged ({what})")


def _str(doc: dict, name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise _damaged(f"{name} is not a string")
    return value


_STATES = {s.value: s for s in ScanState}


class _Reader:
    def __init__(self, wanted: Iterable[ImageRef]) -> None:
        self.wanted = set(wanted)
        self.tables = stage_files.SharedLines()  # the advisory and package lines, as scan.json's
        self.entries: dict[ImageRef, Entry] = {}

    def read(self, data: bytes, *, key: str) -> dict[ImageRef, Entry]:
        text = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
        lines = capped_lines(text, max_line=MAX_LINE_BYTES, max_total=MAX_TEXT_BYTES)
        try:
            head = codec.decode_json(next(lines, b"null"))
            if not isinstance(head, dict) or head.get("schema") != SCHEMA:
                raise Unusable(f"it is not of this version's schema ({SCHEMA})")
            if head.get("key") != key:
                raise Unusable("it was written for another cluster, job version or registry settings")
            for line in lines:
                item = codec.decode_json(line)
                if not isinstance(item, dict):
                    raise _damaged("a line is not an object")
                kind = "advisory" if "advisory" in item else "package" if "package" in item else ""
                if kind:
                    self.tables.take(kind, item[kind], kind)
                else:
                    self._entry(item)
        except TooLarge as exc:
            raise Unusable(f"it holds {exc} unzipped") from None
        except stage_files.DamagedLine as exc:
            raise _damaged(str(exc)) from None
        return self.entries

    def _entry(self, item: dict) -> None:
        at, ref, name = item.get("at"), item.get("ref"), item.get("state")
        state = _STATES.get(name) if isinstance(name, str) else None
        if not finite_number(at):
            raise _damaged("an entry has no fetch time")
        if not (isinstance(ref, list) and len(ref) == 3 and all(isinstance(x, str) for x in ref)) or state is None:
            raise _damaged("an entry has no manifest or state")
        image = ImageRef(*ref)
        if image not in self.wanted:
            return
        if image in self.entries:
            raise _damaged("a manifest appears twice")
        page = item.get("pageUrl")
        if not isinstance(page, str):
            raise _damaged("pageUrl is not a string")
        report = None
        if item.get("ns") is not None:
            packages = item.get("packages")
            wrong = misfit(packages, [int], "packages")
            if wrong:
                raise _damaged(wrong)
            report = VulnReport(_str(item, "ns"), self.tables.named(self.tables.packages, packages, "packages"))
        result = ScanResult(image, state, report=report, detail=_str(item, "detail"), backend=_str(item, "backend"),
                            page_url=page)
        if keep_for(result, math.inf) is None:  # a failure, or "scanned" without a report: never from a cache
            raise _damaged(f"an entry of state {state.value!r} cannot be kept")
        self.entries[image] = Entry(result, float(at))


def save(path: Path, entries: Mapping[ImageRef, Entry], *, key: str) -> None:
    """I/O: the file, written whole or not at all (temporary file, then rename)."""
    with codec.atomic_gzip(path) as out:
        out.write(codec.encode_json({"schema": SCHEMA, "key": key, "entries": len(entries)}) + b"\n")
        writer = stage_files.SharedTables(lambda line: out.write(line + b"\n"))
        for ref, entry in entries.items():
            r = entry.result
            report = r.report
            out.write(codec.encode_json({
                "at": entry.fetched_at, "ref": [ref.host, ref.repository, ref.digest], "state": r.state.value,
                "detail": r.detail, "backend": r.backend, "pageUrl": r.page_url,
                "ns": None if report is None else report.namespace_name,
                "packages": [] if report is None else [writer.package(f) for f in report.vulnerable_features],
            }) + b"\n")
