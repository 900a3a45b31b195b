"""The seam between the router (online.py) and the registry backends (Quay, Clair, Harbor).

A backend is anything with a `name` and one call, `scan`, that answers a manifest with its
ScanResult. The parsers behind the backends raise one error, `UnexpectedShape`, for a document
that is JSON but not of the shape they read; each backend words it for the user.
`report_result` is the tail the backends that GET a report document (Clair, Harbor) share.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from job.model import ImageRef, ScanRequest, ScanResult, ScanState, VulnReport
from job.registries.http import Reply, RetryBudget
from job.registries.status import state_for_status

__all__ = ["Backend", "ScanResult", "UnexpectedShape", "report_result"]


class UnexpectedShape(ValueError):
    """A document that is JSON but not of the expected shape; the message names where."""


class Backend(Protocol):
    @property
    def name(self) -> str:
        """Named in every result (`ScanResult.backend`) and in the run's per-host summary."""

    def scan(self, request: ScanRequest, *, budget: RetryBudget) -> ScanResult:
        """The manifest's one result. I/O: the requests spend `budget` (retries and the stage's
        deadline). A problem of this manifest is a result, not an exception; a ScanFailure that
        escapes is settled by the caller with its own state and detail."""


def report_result(ref: ImageRef, reply: Reply, *, backend: str, label: str,
                  parse: Callable[[Any], VulnReport | None], absent: str = "") -> ScanResult:
    """The manifest's result from the final answer to its report request. Pure.

    A status other than 200 is classified (`label` names who answered: "Clair", "Harbor"); a
    document `parse` refuses with UnexpectedShape is an error; one it finds no report in (None)
    is not found, `absent` saying why. Raises BadResponse when the body is not JSON."""
    if reply.status != 200:
        state, detail = state_for_status(reply, label)
        return ScanResult(ref, state, detail=detail, backend=backend)
    try:
        report = parse(reply.json(f"{label} vulnerability report"))
    except UnexpectedShape as exc:
        return ScanResult(ref, ScanState.ERROR, detail=f"malformed {label} report: {exc}", backend=backend)
    if report is None:
        return ScanResult(ref, ScanState.NOT_FOUND, detail=absent, backend=backend)
    return ScanResult(ref, ScanState.SCANNED, report=report, backend=backend)
