"""Puts the rendered reports in the output folder, each file replaced atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import msgspec

from job.codec import atomic_open, decode_json, encode_json, write_file
from job.files import NotRegularFile, TooLarge, read_regular
from job.report import pages
from job.report.html import EVERY_ROW, INDEX, LIMITS, render_html
from job.report.summary import summary_doc
from job.report.view import ReportContext
from job.report.xlsx import write_xlsx

HTML_FILE = "report.html"
XLSX_FILE = "report.xlsx"
SUMMARY_FILE = "summary.json"
PREVIOUS_FILE = "summary.previous.json"
#: The last summary.json is read by every run: 50,000 pods write about 2 MB. One larger than this
#: (planted, or /dev/zero) is skipped with a warning; decoding it could take more memory than the
#: CronJob has, and every later run would die the same way before it could write a new one.
MAX_SUMMARY_BYTES = 64 << 20


def write_reports(ctx: ReportContext, out_dir: Path) -> list[Path]:
    """report.html, report.xlsx, then summary.json (last: it is what the next run compares with, so it
    moves on only once the reports are written). A summary.json of another snapshot is kept as
    summary.previous.json, so that re-rendering this run still compares with the run before."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, xlsx_path, summary_path = out_dir / HTML_FILE, out_dir / XLSX_FILE, out_dir / SUMMARY_FILE

    owner_pages = _write_pages(ctx, out_dir)
    with atomic_open(xlsx_path) as fh:
        write_xlsx(ctx, dest=fh)

    old = _read_bytes(summary_path)[0]
    taken_at = None if old is None else _taken_at(old)
    if taken_at is not None and taken_at != ctx.taken_at:  # a damaged one is not worth keeping
        write_file(out_dir / PREVIOUS_FILE, old)
    write_file(summary_path, json_bytes(summary_doc(ctx)))

    ctx.artifacts.update(html=html_path, xlsx=xlsx_path, json=summary_path)
    if owner_pages:
        ctx.artifacts["pages"] = out_dir / pages.FOLDER
    return [html_path, xlsx_path, summary_path]


def _write_pages(ctx: ReportContext, out_dir: Path) -> list[Path]:
    """report.html; on a large cluster, as the index of owners/*.html, each owner's page written first
    (the index links only to pages that exist). Owner pages of an earlier run are removed. Returns
    the owner pages written."""
    index, folder = out_dir / HTML_FILE, out_dir / pages.FOLDER
    if not pages.is_large(ctx, LIMITS):
        write_file(index, render_html(ctx).encode("utf-8", "replace"))
        _remove_pages(folder, keep=set())
        return []
    listed = pages.owner_pages(ctx)
    written = []
    for page, share in pages.restricted(ctx, listed):
        path = out_dir / page.path
        write_file(path, render_html(share, limits=EVERY_ROW, home="../" + HTML_FILE, title=page.title)
                   .encode("utf-8", "replace"))
        written.append(path)
    write_file(index, render_html(ctx, limits=INDEX, pages=listed).encode("utf-8", "replace"))
    _remove_pages(folder, keep={p.name for p in written})
    return written


def _remove_pages(folder: Path, *, keep: set[str]) -> None:
    if not folder.is_dir() or folder.is_symlink():
        return
    for old in folder.glob("*.html"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def json_bytes(doc: Any) -> bytes:
    # orjson writes bytes straight away: json's list of pieces, its text and then its bytes held
    # together were the report stage's peak at 50,000 pods. Lone surrogates from odd registry JSON
    # cannot be UTF-8: encode_json's fallback replaces them rather than failing the run.
    return encode_json(doc)


def read_summary(path: Path) -> dict | None:
    return read_summary_why(path)[0]


def read_summary_why(path: Path, *, lean: Callable[[bytes], dict | None] | None = None) -> tuple[dict | None, str]:
    """A summary.json as a JSON object, else None and why not ('' when there is no such file).
    lean: a quicker decoding of only some fields; where it gives None, the whole is decoded."""
    data, why = _read_bytes(path)
    if data is None:
        return None, why
    doc = lean(data) if lean is not None else None
    return (doc, "") if doc is not None else _decode(data)


def _decode(data: bytes) -> tuple[dict | None, str]:
    try:
        doc = decode_json(data)
    except ValueError as exc:  # not JSON, not UTF-8, nested too deeply
        return None, f"is not JSON ({str(exc)[:100]})"
    return (doc, "") if isinstance(doc, dict) else (None, "is not a JSON object")


class _Head(msgspec.Struct):
    takenAt: Any = None


_HEAD = msgspec.json.Decoder(_Head)


def _taken_at(data: bytes) -> str | None:
    # Only its takenAt: decoding the whole of the last summary.json (its findings table) took
    # more memory at once than anything else in the report stage.
    try:
        taken_at = _HEAD.decode(data).takenAt
        return taken_at if isinstance(taken_at, str) else None
    except (msgspec.MsgspecError, ValueError, RecursionError):
        pass  # not an object, or JSON msgspec refuses that json may accept: the careful way judges
    doc = _decode(data)[0]
    taken_at = doc.get("takenAt") if doc is not None else None
    return taken_at if isinstance(taken_at, str) else None


def _read_bytes(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, else None and why not ('' when there is no such file). A FIFO is not waited
    for, nor more than MAX_SUMMARY_BYTES read."""
    try:
        return read_regular(path, max_bytes=MAX_SUMMARY_BYTES), ""
    except FileNotFoundError:
        return None, ""
    except NotRegularFile as exc:
        return None, f"is {exc.kind}, not a file"
    except TooLarge:
        return None, f"is larger than {MAX_SUMMARY_BYTES >> 20} MiB, more than a run writes"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__})"

