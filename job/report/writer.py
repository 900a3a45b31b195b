"""Puts the rendered reports in the output folder, each file replaced atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from job.report.context import ReportContext
from job.report.html import render_html
from job.report.summary import summary_doc
from job.report.xlsx import write_xlsx

HTML_FILE = "report.html"
XLSX_FILE = "report.xlsx"
SUMMARY_FILE = "summary.json"
PREVIOUS_FILE = "summary.previous.json"


def write_reports(ctx: ReportContext, out_dir: Path) -> list[Path]:
    """report.html, report.xlsx, then summary.json (last: it is what the next run compares with, so it
    moves on only once the reports are written). A summary.json of another snapshot is kept as
    summary.previous.json, so that re-rendering this run still compares with the run before."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, xlsx_path, summary_path = out_dir / HTML_FILE, out_dir / XLSX_FILE, out_dir / SUMMARY_FILE

    _replace(html_path, render_html(ctx).encode("utf-8", "replace"))
    tmp = _tmp(xlsx_path)
    try:
        write_xlsx(ctx, dest=tmp)
        os.replace(tmp, xlsx_path)
    finally:
        tmp.unlink(missing_ok=True)

    old = _read_bytes(summary_path)
    if old is not None and _taken_at(old) != ctx.taken_at:
        _replace(out_dir / PREVIOUS_FILE, old)
    _replace(summary_path, json_bytes(summary_doc(ctx)))

    ctx.artifacts.update(html=html_path, xlsx=xlsx_path, json=summary_path)
    return [html_path, xlsx_path, summary_path]


def json_bytes(doc: Any) -> bytes:
    # Lone surrogates from odd registry JSON cannot be UTF-8: replaced rather than failing the run.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def read_summary(path: Path) -> dict | None:
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _taken_at(data: bytes) -> str | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc.get("takenAt") if isinstance(doc, dict) else None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _replace(path: Path, data: bytes) -> None:
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
