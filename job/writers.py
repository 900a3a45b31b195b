"""Who wrote what of an object, from the managedFields the API server keeps on every object (pure).

The content hash annotation says what the job last wrote. Whether the object still holds it is
told, without reading the object in full, by what the metadata-only LIST already returns: the
generation (bumped by any change of the spec), the labels and annotations, and managedFields (who
holds which fields of the status, and when each writer last changed something).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

#: The fieldManager of every write the job makes.
FIELD_MANAGER = "imvjob"


@dataclass(frozen=True, slots=True)
class Writers:
    #: When the job last changed the object (the latest of its entries), "" when it never did.
    ours: str = ""
    #: When another writer last changed the status, "" when none did.
    others_status: str = ""
    #: Digest of the status fields that exist (every field a write set has a holder).
    status_fields: str = ""


def _status_paths_of(fields: Any, out: set[str]) -> None:
    """Field paths of a fieldsV1 `f:status` tree: top-level keys, and each affectedPods key."""
    if not isinstance(fields, dict):
        return
    for key, sub in fields.items():
        if not isinstance(key, str) or not key.startswith("f:"):
            continue
        name = key[2:]
        if name == "affectedPods" and isinstance(sub, dict):
            out.update(f"affectedPods/{k[2:]}" for k in sub if isinstance(k, str) and k.startswith("f:"))
        out.add(name)


def status_digest(paths: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(paths))).encode()).hexdigest()[:24]


def status_paths(status: dict[str, Any]) -> list[str]:
    """The field paths a status written by the job holds (lastUpdate included)."""
    paths = [*status, "lastUpdate"]
    paths += [f"affectedPods/{key}" for key in status.get("affectedPods") or {}]
    return paths


def writers(managed_fields: Any) -> Writers:
    """Pure: a Writers summary of an object's metadata.managedFields (any shape: a malformed entry
    counts as another writer's, so it can only cost a full read, never vouch)."""
    if not isinstance(managed_fields, list):
        return Writers()
    ours = others_status = ""
    paths: set[str] = set()
    for entry in managed_fields:
        if not isinstance(entry, dict):
            others_status = "~"  # sorts after every timestamp
            continue
        when = entry.get("time") if isinstance(entry.get("time"), str) else "~"
        status_entry = entry.get("subresource") == "status"
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Update":
            ours = max(ours, when) if when != "~" else ours
        elif status_entry:
            others_status = max(others_status, when)
        fields = entry.get("fieldsV1")
        if status_entry and isinstance(fields, dict):
            _status_paths_of(fields.get("f:status"), paths)
    return Writers(ours=ours, others_status=others_status, status_fields=status_digest(paths) if paths else "")
