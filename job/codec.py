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


def read_json(path: Path) -> Any:
    """A JSON file, or its gzipped twin `path`.gz (a whole run's stage files) when that is newer."""
    path = newest(path)
    try:
        if path.suffix == ".gz":
            return decode_json(gzip.decompress(path.read_bytes()))
        return decode_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist; run the stage that writes it first") from exc
    except (OSError, ValueError, EOFError, zlib.error) as exc:  # a damaged file, a gzip cut short
        raise ConfigError(f"cannot read {path}: {str(exc)[:200]}") from exc
