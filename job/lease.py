"""The apply Lease: a coordination.k8s.io Lease held while a run applies, so that two runs never
apply at once. Its requests go through job.kube's client (Kube.lease makes one)."""
from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from typing import Any, Protocol
from urllib.parse import quote

from job.errors import Conflict, KubeError, LeaseHeld, NotFound


class Requester(Protocol):
    """The one call of job.kube.Kube a Lease makes."""

    def request(self, method: str, path: str, *, body: Any = None, verb: str = "") -> Any: ...


def _micro_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _parse_micro_time(value: str) -> float:
    try:
        return dt.datetime.strptime(value.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        try:
            return dt.datetime.strptime(value.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S").replace(
                tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            return 0.0


class Lease:
    """A coordination.k8s.io Lease held while a run applies, renewed in the background, so that two
    runs (a CronJob run and one started by hand) never apply at once."""

    def __init__(self, kube: Requester, *, namespace: str, name: str, wait: float, duration: int) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.wait, self.duration = wait, duration
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace)}/leases"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: dict | None = None

    def __enter__(self) -> "Lease":
        deadline = time.monotonic() + self.wait
        while True:
            holder = self._try_acquire()
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise LeaseHeld(f"another run ({holder}) is applying: Lease {self.namespace}/{self.name} is held; "
                                f"try again later or raise --lease-wait")
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._renew, name="lease-renew", daemon=True)
        self._thread.start()
        return self

    def _try_acquire(self) -> str | None:
        """None when acquired; else the current holder."""
        now = time.time()
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                "acquireTime": _micro_time(now), "renewTime": _micro_time(now)}
        try:
            current = self.kube.request("GET", f"{self.path}/{quote(self.name)}", verb="lease")
        except NotFound:
            try:
                self._lease = self.kube.request(
                    "POST", self.path, verb="lease",
                    body={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": self.name, "namespace": self.namespace,
                                       "labels": {"app.kubernetes.io/managed-by": "imvjob"}}, "spec": spec})
                return None
            except Conflict:
                return "a run that just started"
        held = current.get("spec") or {}
        holder = held.get("holderIdentity") or ""
        renewed = _parse_micro_time(held.get("renewTime") or held.get("acquireTime") or "")
        if holder and holder != self.identity and renewed + int(held.get("leaseDurationSeconds") or 0) > now:
            return holder
        current["spec"] = {**held, **spec, "leaseTransitions": int(held.get("leaseTransitions") or 0) + 1}
        try:
            self._lease = self.kube.request("PUT", f"{self.path}/{quote(self.name)}", body=current, verb="lease")
            return None
        except Conflict:
            return "a run that just took it"

    def _renew(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                lease = dict(self._lease or {})
                lease["spec"] = {**lease.get("spec", {}), "renewTime": _micro_time(time.time())}
                self._lease = self.kube.request("PUT", f"{self.path}/{quote(self.name)}", body=lease, verb="lease")
            except KubeError:
                continue  # the next renewal tries again; the lease lasts three periods

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            lease = dict(self._lease or {})
            lease["spec"] = {**lease.get("spec", {}), "holderIdentity": None, "renewTime": None,
                             "acquireTime": None}
            self.kube.request("PUT", f"{self.path}/{quote(self.name)}", body=lease, verb="lease")
        except KubeError:
            pass  # it expires by itself after leaseDurationSeconds
