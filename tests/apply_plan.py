"""What the apply plan's tests share: a fixed run time, a small report, the metadata the API server
lists for objects, and a recorder of the tasks the plan chose."""
from __future__ import annotations

import datetime as dt

from job.desired import HASH_ANNOTATION
from job.model import Feature, Vulnerability, VulnReport
from job.writers import Writers, status_digest, status_paths

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)
REPORT = VulnReport("debian:12", (Feature("a", "1", vulnerabilities=(Vulnerability("CVE-1", "High"),)),))


def vouched_meta(obj) -> dict:
    """The metadata the API server lists for an object the job wrote last and no one touched since."""
    return {"metadata": {"namespace": obj.namespace, "name": obj.name, "labels": dict(obj.labels),
                         "resourceVersion": "5", "generation": 2,
                         "annotations": {**obj.annotations, HASH_ANNOTATION: f"{obj.content_hash}:2"},
                         "writers": Writers(ours="2026-11-29T10:00:00Z", others_status="2026-11-28T10:00:00Z",
                                            status_fields=status_digest(status_paths(obj.status)))}}


def listed_meta(ns: str, name: str, *, ours: bool = True, hash_: str = "") -> dict:
    labels = {"app.kubernetes.io/managed-by": "imvjob"} if ours else {}
    return {"metadata": {"namespace": ns, "name": name, "labels": labels, "resourceVersion": "1",
                         "annotations": {HASH_ANNOTATION: hash_} if hash_ else {}}}


class Recorder:
    """Stands in for the applier: records which task the plan chose for which object."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def create(self, obj):
        self.calls.append(("create", obj.key))

    def update(self, obj, existing):
        self.calls.append(("update", obj.key))

    def refresh_pods(self, kept, existing):
        self.calls.append(("refresh", kept.key))

    def delete(self, key, meta):
        self.calls.append(("delete", key))


def run_tasks(tasks) -> list[tuple[str, str]]:
    rec = Recorder()
    for _, task in tasks:
        task(rec)
    return sorted(rec.calls)
