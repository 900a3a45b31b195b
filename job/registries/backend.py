"""The seam between the router (online.py) and the registry backends (Quay, Clair, Harbor).

A backend is anything with a `name` and one call, `scan`, that answers a manifest with its
ScanResult. The parsers behind the backends raise one error, `UnexpectedShape`, for a document
that is JSON but not of the shape they read; each backend words it for the user.
"""
from __future__ import annotations

from typing import Protocol

from job.model import ScanRequest, ScanResult
from job.registries.http import RetryBudget

__all__ = ["Backend", "ScanResult", "UnexpectedShape"]


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
