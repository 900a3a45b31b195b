"""summary.json against its documentation (docs/summary-schema.md): the fields the documentation's
table names, and the fields a document has, to compare the two."""
from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "summary-schema.md"
SEVERITY_MAP = {"Defcon1", "Critical", "High", "Medium", "Low", "Negligible", "Unknown"}


def documented_fields() -> set[str]:
    """First cells of the field table: `a.b`, or `a[].b`, `.c` (= a[].c)."""
    fields = set()
    for cell in re.findall(r"^\| (`[^|]+`) \|", DOCS.read_text(encoding="utf-8"), flags=re.M):
        names = re.findall(r"`([^`]+)`", cell)
        parent = names[0].rsplit(".", 1)[0]
        fields.update([names[0]] + [parent + n for n in names[1:] if n.startswith(".")])
    return fields


def field_paths(value, prefix=""):
    """Leaf paths of a document: severity maps and lists of scalars or lists are leaves."""
    if isinstance(value, dict) and not set(value) <= SEVERITY_MAP:
        for key, item in value.items():
            yield from field_paths(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        yield from field_paths(value[0], f"{prefix}[]")
    else:
        yield prefix
