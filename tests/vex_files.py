"""OpenVEX v0.2.0 documents shaped as vexctl and the spec's examples write them, for tests and the demo."""
from __future__ import annotations

import json
from pathlib import Path


def statement(vulnerability: str, image: str, *, status: str = "not_affected", packages: tuple[str, ...] = (),
              justification: str = "vulnerable_code_not_in_execute_path", impact: str = "",
              action: str = "", timestamp: str = "") -> dict:
    """One statement about an image (`pkg:oci/...` purl or `host/repo[@sha256:...]`) and maybe its packages."""
    product: dict = {"@id": image}
    if packages:
        product["subcomponents"] = [{"@id": p} for p in packages]
    st: dict = {"vulnerability": {"name": vulnerability}, "products": [product], "status": status}
    if status == "not_affected":
        st["justification"] = justification
        if impact:
            st["impact_statement"] = impact
    if status == "affected":
        st["action_statement"] = action or "Update the image."
    if timestamp:
        st["timestamp"] = timestamp
    return st


def document(*statements: dict, author: str = "Shop security <security@shop.example>",
             timestamp: str = "2026-04-01T09:00:00Z", doc_id: str = "https://shop.example/vex/2026-04") -> dict:
    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": doc_id, "author": author, "role": "Document Creator",
            "timestamp": timestamp, "version": 1, "tooling": "hand-written", "statements": list(statements)}


def write_vex(path: Path, *statements: dict, **kw) -> Path:
    path.write_text(json.dumps(document(*statements, **kw), indent=2), encoding="utf-8")
    return path
