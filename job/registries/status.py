"""What an HTTP status that no backend has a special meaning for says about a manifest."""
from __future__ import annotations

from job.model import ScanState
from job.registries.failures import excerpt
from job.registries.http import Reply
from job.registries.retry import UNAVAILABLE


def state_for_status(reply: Reply, label: str) -> tuple[ScanState, str]:
    """(state, detail) for a final non-200 answer; `label` names who answered ("registry", "Clair")."""
    status = reply.status
    tries = f" after {reply.attempts} attempts" if reply.attempts > 1 else ""
    if status in (401, 403):
        return ScanState.UNAUTHORIZED, f"{label} refused access (HTTP {status})"
    if status == 404:
        return ScanState.NOT_FOUND, f"{label} does not know this manifest (HTTP 404)"
    if status == 429:
        wait = reply.headers.get("Retry-After", "")
        asked = f", Retry-After {excerpt(wait, 40)}" if wait.strip() else ""
        return ScanState.UNREACHABLE, f"{label} rate limit (HTTP 429){tries}{asked}"
    if status in UNAVAILABLE:
        return ScanState.UNREACHABLE, f"{label} unavailable (HTTP {status}){tries}"
    return ScanState.ERROR, f"{label} answered HTTP {status}{tries}: {excerpt(reply.body)}"
