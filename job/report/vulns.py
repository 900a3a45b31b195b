"""What every vulnerability row of the report names first: a vulnerability, the package it is in,
and its severity. The rows that list them (a group of the vulnerability table, an accepted finding)
add where it is and why it is listed."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PackageVuln:
    vulnerability: str
    package: str
    severity: str  # one of job.model.SEVERITIES
