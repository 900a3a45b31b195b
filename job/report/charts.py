"""Charts as inline SVG: no script, no external file, every label escaped.

Each function returns markup for one chart; the HTML template places it.
"""
from __future__ import annotations

from typing import Iterable

from markupsafe import Markup, escape

from job.model import SEVERITIES, SEVERITY_RANK
from job.report.palette import background
from job.report.view import Counts, ImageItem, TrendPoint

_DESC = tuple(reversed(SEVERITIES))
_FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def _shown(by_severity: tuple[int, ...]) -> list[str]:
    # Defcon1 and Unknown are rare: show them only when present.
    return [s for s in _DESC if by_severity[SEVERITY_RANK[s]] or s not in ("Defcon1", "Unknown")]


def severity_bars(counts: Counts, *, width: int = 380) -> Markup:
    """Vulnerability entries per severity, one bar each."""
    rows = _shown(counts.by_severity)
    top = max(counts.by_severity) or 1
    label_w, row_h, bar_max = 92, 26, width - 92 - 70
    height = row_h * len(rows) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Vulnerabilities per severity" {_FONT}>']
    for n, sev in enumerate(rows):
        value = counts.of(sev)
        y = n * row_h + 3
        w = max(2, round(bar_max * value / top)) if value else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end" fill="#1d2430">'
                     f'{escape(sev)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_max}" height="{row_h - 8}" rx="3" fill="#eef1f4"/>')
        if w:
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" rx="3" '
                         f'fill="{background(sev)}"><title>{escape(sev)}: {value:,}</title></rect>')
        parts.append(f'<text x="{label_w + max(w, 0) + 6}" y="{y + 16}" font-size="12" font-weight="600" '
                     f'fill="#1d2430">{value:,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def top_images(images: Iterable[ImageItem], *, limit: int = 8, width: int = 420) -> Markup:
    """The most vulnerable images, each a bar split by severity."""
    chosen = [i for i in images if i.counts.total][:limit]
    if not chosen:
        return Markup('<p class="muted">No vulnerable image.</p>')
    top = max(i.counts.total for i in chosen)
    row_h, bar_max = 38, width - 60
    height = row_h * len(chosen) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Most vulnerable images" {_FONT}>']
    for n, image in enumerate(chosen):
        y = n * row_h
        name = image.image if len(image.image) <= 58 else "…" + image.image[-57:]
        parts.append(f'<text x="0" y="{y + 12}" font-size="11" fill="#3b4554">{escape(name)}</text>')
        x = 0.0
        for sev in _DESC:
            value = image.counts.of(sev)
            if not value:
                continue
            w = bar_max * value / top
            parts.append(f'<rect x="{x:.1f}" y="{y + 17}" width="{max(w, 1.5):.1f}" height="14" '
                         f'fill="{background(sev)}"><title>{escape(sev)}: {value:,}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 29}" font-size="11" font-weight="600" fill="#1d2430">'
                     f'{image.counts.total:,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend(points: tuple[TrendPoint, ...], *, width: int = 380) -> Markup:
    """Vulnerability entries per run, stacked by severity, oldest on the left."""
    height, base, top_pad = 190, 160, 18
    top = max((p.total for p in points), default=0) or 1
    slot = (width - 20) / max(len(points), 1)
    bar_w = min(38.0, slot * 0.6)
    labels = _run_labels(points)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Vulnerabilities per run" {_FONT}>',
             f'<line x1="10" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#c5ccd4"/>']
    for n, point in enumerate(points):
        cx = 10 + slot * n + slot / 2
        y = float(base)
        for sev in SEVERITIES:
            value = point.by_severity[SEVERITY_RANK[sev]]
            if not value:
                continue
            h = (base - top_pad) * value / top
            y -= h
            parts.append(f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 1):.1f}" '
                         f'fill="{background(sev)}"><title>{escape(sev)}: {value:,}</title></rect>')
        parts.append(f'<text x="{cx:.1f}" y="{y - 4:.1f}" font-size="11" font-weight="600" text-anchor="middle" '
                     f'fill="#1d2430">{point.total:,}</text>')
        label = labels[n]
        parts.append(f'<text x="{cx:.1f}" y="{base + 16}" font-size="11" text-anchor="middle" fill="#5b6675">'
                     f'{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _run_labels(points: tuple[TrendPoint, ...]) -> list[str]:
    """'05-01' per run ("2026-05-01T10:00:00Z"); the time of day for runs that share a day."""
    days = [p.taken_at[5:10] for p in points]
    return ["now" if p.current else (p.taken_at[11:16] if days.count(day) > 1 else day) or "?"
            for p, day in zip(points, days)]
