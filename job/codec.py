"""JSON and files: the one JSON path of the API server, registries and the job's own files
(orjson, with json for what orjson refuses), and files written in full or not at all.
The stage files' formats are job.stage_files'.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from job.errors import ConfigError
from job.files import NotRegularFile, TooLarge, open_regular, read_capped, read_regular
from job.memory import gc_paused


def decode_json(data: bytes | str) -> Any:
    """JSON of the API server, registries and stage files. orjson decodes them several times
    faster than json; the cyclic garbage collector is held off meanwhile for large documents
    (decoded JSON holds no cycles, and the collections that tens of thousands of new dicts
    trigger cost more than the decoding). What orjson refuses and json accepts (lone surrogate
    escapes, NaN) is decoded by json, as before."""
    if len(data) < 65536:
        return _decode(data)
    with gc_paused():
        return _decode(data)


class TooDeep(ValueError):
    """JSON nested deeper than the decoders allow: an error of the document, like any other."""


def _decode(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise TooDeep("JSON nested more than 1024 levels deep") from None
    try:
        return json.loads(data)
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None


def encode_json(doc: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON, as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it (for
    documents without floats, which the two write differently), keys sorted if asked."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except TypeError:  # deeper than orjson's 255 levels (a registry's metadata), a lone surrogate: json writes it
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
                          sort_keys=sort_keys).encode("utf-8", "replace")


def write_json(path: Path, doc: Any) -> None:
    write_file(path, encode_json(doc))


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A file written in full or not at all: under a unique temporary name in `path`'s folder,
    created exclusively (O_EXCL|O_NOFOLLOW: never through a link planted there, never someone
    else's file), then renamed over `path`. Text modes write UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as an ordinary new file, not mkstemp's 0600
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_gzip(path: Path) -> Iterator[IO[bytes]]:
    """A gzipped file written in full or not at all (atomic_open), through a buffer: zipping a
    line at a time costs several times zipping the same bytes in large pieces."""
    with atomic_open(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz, \
            io.BufferedWriter(gz, buffer_size=1 << 20) as out:
        yield out


def write_file(path: Path, data: bytes) -> None:
    with atomic_open(path) as fh:
        fh.write(data)


def strings_only(value: Any) -> tuple[dict[str, str], list[str]]:
    """Labels or annotations as the API server types them (strings to strings): the entries that
    are, and the keys of those that are not (all of it, "*", when `value` is no object)."""
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, ["*"]
    kept = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
    if len(kept) == len(value):
        return value, []
    return kept, [str(k)[:100] for k in value if k not in kept]


def newest(path: Path) -> Path:
    """`path`, or its gzipped twin `path`.gz (a whole run's stage files) when that is newer."""
    packed = path.with_name(path.name + ".gz")
    try:
        if path.suffix != ".gz" and packed.is_file() and (
                not path.exists() or packed.stat().st_mtime >= path.stat().st_mtime):
            return packed
    except OSError:
        pass
    return path


#: Bounds of reading the files of an earlier run (the stage files, the last summary.json). 50,000
#: pods write a snapshot.json of some 30 MB; a run that wrote more than these could not have held
#: it. A FIFO, /dev/zero, a sparse or a planted file, or a gzip bomb of a few MB is one clear
#: error: never a run that waits for ever, or is killed for its memory.
MAX_STAGE_TEXT_BYTES = 256 << 20
#: scan.json, read a line at a time: an advisory, a package or a result (version 1: a result with
#: its packages written out).
MAX_STAGE_LINE_BYTES = 64 << 20


@contextlib.contextmanager
def open_stage_file(path: Path) -> Iterator[IO[bytes]]:
    """I/O: a file of an earlier run, unzipped as it is read when gzipped. Raises NotRegularFile."""
    with open_regular(path) as fh:
        if path.suffix != ".gz":
            yield fh
            return
        with gzip.GzipFile(fileobj=fh, mode="rb") as unzipped:
            yield unzipped


def stage_file_error(path: Path, exc: BaseException) -> ConfigError:
    """The one error line for a file of an earlier run that cannot be read."""
    if isinstance(exc, FileNotFoundError):
        return ConfigError(f"{path} does not exist; run the stage that writes it first")
    if isinstance(exc, NotRegularFile):
        return ConfigError(f"{path} is {exc.kind}, not a file; run the stage that writes it again")
    if isinstance(exc, TooLarge):
        unzipped = " unzipped" if path.suffix == ".gz" else ""
        return ConfigError(f"{path} holds {exc}{unzipped}, more than a run writes; run the stage that writes it again")
    return ConfigError(f"cannot read {path}: {str(exc)[:200]}")


#: A small state file of an earlier run (metrics', webhooks'): a few kB.
MAX_STATE_BYTES = 1 << 20


def read_state_json(path: Path) -> Any:
    """I/O: a small state file of an earlier run as JSON; None when there is none, or it is not a
    regular file, larger than MAX_STATE_BYTES or not JSON: every run reads it, and none must wait
    for a FIFO or fill its memory with what it cannot use anyway."""
    try:
        return decode_json(read_regular(path, max_bytes=MAX_STATE_BYTES))
    except (OSError, ValueError, NotRegularFile, TooLarge):
        return None


def read_json(path: Path) -> Any:
    """A JSON file, or its gzipped twin `path`.gz (a whole run's stage files) when that is newer."""
    path = newest(path)
    try:
        with open_stage_file(path) as fh:
            data = read_capped(fh, max_bytes=MAX_STAGE_TEXT_BYTES)
        return decode_json(data)
    # A damaged file, a gzip cut short, a FIFO, more than the bound.
    except (OSError, ValueError, EOFError, zlib.error, NotRegularFile, TooLarge) as exc:
        raise stage_file_error(path, exc) from exc
