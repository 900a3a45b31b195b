"""The Container Security Operator's security-labeller (v1.0.6) as a test oracle.

`find_labeller()` builds it once (tests/cso/build.sh, cached outside the checkout) or says why it
cannot be had; `Labeller` runs it against a test control plane with its own kubeconfig, its
metrics on loopback and the registry simulator's CA as its only trusted CA.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

from controlplane import REPO_ROOT, ControlPlaneUnavailable, _die_with_parent, _tail, run_build_script

BUILD_SCRIPT = REPO_ROOT / "tests" / "cso" / "build.sh"


def find_labeller() -> Path:
    """The security-labeller binary (built on first use, progress on stderr)."""
    path = run_build_script(BUILD_SCRIPT)
    if not path or not os.access(path, os.X_OK):
        raise ControlPlaneUnavailable(f"tests/cso/build.sh printed {path!r}, which is not CSO's security-labeller")
    return Path(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Labeller:
    """One security-labeller process; stop() ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, binary: Path, kubeconfig: Path, namespaces: list[str], *, ca_file: str,
                 workdir: Path, resync: float) -> None:
        self.log = workdir / f"cso-{time.monotonic_ns()}.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "SSL_CERT_FILE": ca_file}  # no proxy variables: loopback goes direct
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), f"-kubeconfig={kubeconfig}", f"-namespaces={','.join(namespaces)}",
                 f"-promAddr=127.0.0.1:{_free_port()}", f"-resyncInterval={resync:g}s"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=workdir, preexec_fn=_die_with_parent)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"security-labeller exited with {self.proc.returncode}:\n{_tail(self.log)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return _tail(self.log, 200)


def wait_stable(read: Callable[[], object], *, quiet: float, timeout: float, alive=lambda: None,
                ready: Callable[[object], bool] = bool) -> object:
    """Poll `read()` until it is `ready` and has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        alive()
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif ready(now) and time.monotonic() - since >= quiet:
            return now
    raise TimeoutError(f"no stable state after {timeout}s; last: {last!r}")
