"""Severity colours, shared by the HTML page, its charts, the mail and the workbook."""
from __future__ import annotations

#: Background colour of each severity, and the text colour readable on it (WCAG AA: 4.5:1 at least).
SEVERITY_COLOURS: dict[str, tuple[str, str]] = {
    "Defcon1": ("#4a0418", "#ffffff"),
    "Critical": ("#b0141c", "#ffffff"),
    "High": ("#c4461a", "#ffffff"),
    "Medium": ("#f0ad1a", "#1d2430"),
    "Low": ("#3170a6", "#ffffff"),
    "Negligible": ("#9db3c4", "#1d2430"),
    "Unknown": ("#b4b9c0", "#1d2430"),
}


def background(severity: str) -> str:
    return SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["Unknown"])[0]


def foreground(severity: str) -> str:
    return SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["Unknown"])[1]
