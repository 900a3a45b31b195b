"""A real Kubernetes control plane for the integration tests: etcd and kube-apiserver on loopback.

This is what controller-runtime's envtest does: no kubelet and no controllers run, so pods stay
Pending until a test writes their status (`set_pod_running`), and nothing is garbage collected.
The API server itself is real: schema validation, the status subresource, pagination,
server-side dry-run, RBAC and the TokenRequest API all behave as in a cluster.

    binaries = find_binaries()                 # KUBEBUILDER_ASSETS, else tests/controlplane/build.sh
    with ControlPlane.start(binaries) as cp:
        cp.create_namespace("demo")
        cp.request("GET", "/api/v1/namespaces/demo/pods").json()
"""

from __future__ import annotations

import atexit
import base64
import copy
import ctypes
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Mapping, NoReturn, Sequence

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tests" / "controlplane" / "build.sh"
PROJECT_CRD = REPO_ROOT / "imagemanifestvuln.crd.yaml"
CRD_NAME = "imagemanifestvulns.secscan.quay.redhat.com"
IMV_API = "/apis/secscan.quay.redhat.com/v1alpha1"
BINARIES = ("kube-apiserver", "etcd")
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 30.0


class ControlPlaneUnavailable(Exception):
    """The kube-apiserver and etcd binaries cannot be had on this machine."""


def unavailable(reason: str) -> NoReturn:
    """A part the tests need is missing: fail in CI (CI=true), where it must be there; skip
    elsewhere, saying why."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class ApiError(Exception):
    """The API server answered a request with an error status."""

    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        try:
            self.body = response.json()
        except ValueError:
            self.body = {"message": response.text}
        super().__init__(
            f"{response.request.method} {response.url} -> {response.status_code}: "
            f"{self.body.get('message', self.body)}"
        )


# --- binaries -------------------------------------------------------------------------------


def has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in BINARIES)


def run_build_script(script: Path) -> str:
    """Run a build script of tests/ that prints what it built: its stderr carries the build's
    progress, passed through, and its end is kept for the reason when it fails."""
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    tail: deque[str] = deque(maxlen=15)
    for line in proc.stderr:
        sys.stderr.write(line)
        tail.append(line.rstrip())
    printed = proc.stdout.read().strip()
    if proc.wait() != 0:
        name = script.relative_to(REPO_ROOT)
        raise ControlPlaneUnavailable(f"{name} failed with exit code {proc.returncode}:\n" + "\n".join(tail))
    return printed


def find_binaries() -> Path:
    """The folder holding kube-apiserver and etcd: KUBEBUILDER_ASSETS when set, else the cache
    folder that build.sh prints (building there, with progress on stderr, on a cold machine)."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        if has_binaries(Path(assets)):
            return Path(assets)
        raise ControlPlaneUnavailable(
            f"KUBEBUILDER_ASSETS={assets} does not hold executable {' and '.join(BINARIES)}"
        )
    if not shutil.which("bash"):
        raise ControlPlaneUnavailable("bash is needed to run tests/controlplane/build.sh")
    folder = run_build_script(BUILD_SCRIPT)
    if not folder or not has_binaries(Path(folder)):
        raise ControlPlaneUnavailable(f"tests/controlplane/build.sh printed {folder!r}, "
                                      "which does not hold both binaries")
    return Path(folder)


# --- processes ------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it when the test process dies, even by
    SIGKILL, so no etcd or kube-apiserver outlives the session."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are chosen, so the ports differ from each other.
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return ""


WORKDIR_PREFIX = "imvjob-controlplane-"


def _remove_orphaned_workdirs() -> None:
    """Temp dirs left by a test process that was killed outright (its etcd and kube-apiserver
    died with it)."""
    for folder in Path(tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        try:
            os.kill(int((folder / "owner.pid").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


# --- certificates ---------------------------------------------------------------------------


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a serving certificate for 127.0.0.1/localhost and a service-account key
    pair; returns their paths."""
    now = dt.datetime.now(dt.timezone.utc)
    valid_from, valid_to = now - dt.timedelta(hours=1), now + dt.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imvjob test control plane CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=False, crl_sign=False,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    paths = {
        "ca": folder / "ca.crt",
        "server_cert": folder / "apiserver.crt",
        "server_key": folder / "apiserver.key",
        "sa_key": folder / "sa.key",
        "sa_pub": folder / "sa.pub",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["server_cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths["server_key"].write_bytes(_pem_key(server_key))
    paths["sa_key"].write_bytes(_pem_key(sa_key))
    paths["sa_pub"].write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for key in ("server_key", "sa_key"):
        paths[key].chmod(0o600)
    return paths


# --- the control plane ----------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ControlPlane:
    """etcd + kube-apiserver running on loopback; stop() (or leaving the `with` block, or the
    interpreter exiting) ends both and removes their temp dir."""

    def __init__(self, binaries: Path, *, audit: bool = False):
        self.binaries = Path(binaries)
        _remove_orphaned_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        self.admin_token = secrets.token_hex(24)
        self.etcd_port, self.etcd_peer_port, self.port = _free_ports(3)
        self.server = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.ca_file = self.workdir / "pki" / "ca.crt"
        self.startup_seconds: float | None = None
        # With `audit`, every request is one line of this JSON log (see audit_events()).
        self.audit_log: Path | None = self.workdir / "audit.log" if audit else None
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, Path] = {}
        self._discovery: dict[str, list[dict]] = {}
        self._http = requests.Session()
        # Nothing from the environment: no proxy, no REQUESTS_CA_BUNDLE replacing our CA.
        self._http.trust_env = False

    # lifecycle

    @classmethod
    def start(cls, binaries: Path, *, timeout: float = 90.0, audit: bool = False) -> "ControlPlane":
        cp = cls(binaries, audit=audit)
        atexit.register(cp.stop)
        began = time.monotonic()
        try:
            cp._start_etcd(deadline=began + timeout)
            cp._start_apiserver(deadline=began + timeout)
        except BaseException:
            cp.stop()
            raise
        cp.startup_seconds = time.monotonic() - began
        return cp

    def __enter__(self) -> "ControlPlane":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        # The API server first, so it does not spend its last seconds retrying etcd.
        for name in ("kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._http.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        self._logs[name] = log
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(self.binaries / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        self._procs[name] = proc
        return proc

    def _wait(self, name: str, ready, *, deadline: float) -> None:
        proc = self._procs[name]
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n"
                                   + _tail(self._logs[name]))
            try:
                ok, last = ready()
                if ok:
                    return
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready in time ({last}):\n" + _tail(self._logs[name]))

    def _start_etcd(self, *, deadline: float) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn("etcd", [
            "--name=imvjob-test",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=imvjob-test={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ])

        def ready():
            r = self._http.get(f"{client}/health", timeout=2)
            return r.status_code == 200 and r.json().get("health") == "true", r.text

        self._wait("etcd", ready, deadline=deadline)

    def _start_apiserver(self, *, deadline: float) -> None:
        pki = _write_certificates(self._mkdir("pki"))
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        self._spawn("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self._mkdir('certs')}",
            f"--tls-cert-file={pki['server_cert']}",
            f"--tls-private-key-file={pki['server_key']}",
            f"--client-ca-file={pki['ca']}",
            f"--token-auth-file={tokens}",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki['sa_pub']}",
            f"--service-account-signing-key-file={pki['sa_key']}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--profiling=false",
            *self._audit_flags(),
        ])

        def ready():
            r = self.request("GET", "/readyz")
            if r.status_code != 200:
                return False, f"/readyz {r.status_code}"
            r = self.request("GET", "/api/v1/namespaces/default")
            return r.status_code == 200, f"namespace default: {r.status_code}"

        self._wait("kube-apiserver", ready, deadline=deadline)
        self.write_kubeconfig(self.kubeconfig, token=self.admin_token)

    def _audit_flags(self) -> list[str]:
        if self.audit_log is None:
            return []
        # One event per request, written as it arrives (the log backend blocks on each write),
        # so a count read right after a client's request includes it.
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "omitStages": ["ResponseStarted", "ResponseComplete", "Panic"],
            "rules": [{"level": "Metadata"}],
        }))
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxsize=0"]

    def audit_events(self) -> list[dict]:
        """Every request received so far (needs `audit=True`): the audit events, in order,
        each with `user.username`, `userAgent`, `verb`, `objectRef` and `requestURI`."""
        if self.audit_log is None:
            raise RuntimeError("this control plane was started without audit=True")
        if not self.audit_log.exists():
            return []
        with self.audit_log.open() as f:
            # The API server may be writing the last line as it is read: only whole lines count.
            return [json.loads(line) for line in f if line.endswith("\n") and line.strip()]

    def _mkdir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def write_kubeconfig(self, path: Path, *, token: str, namespace: str = "default") -> Path:
        """A kubeconfig for this API server that authenticates with `token`."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "imvjob-test", "cluster": {
                "server": self.server,
                "certificate-authority-data": base64.b64encode(self.ca_file.read_bytes()).decode(),
            }}],
            "users": [{"name": "imvjob-test", "user": {"token": token}}],
            "contexts": [{"name": "imvjob-test", "context": {
                "cluster": "imvjob-test", "user": "imvjob-test", "namespace": namespace,
            }}],
            "current-context": "imvjob-test",
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    # raw API access

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One call to the API server as admin, or as the holder of `token`."""
        all_headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        all_headers.update(headers or {})
        return self._http.request(
            method, self.server + path, json=json, params=params, headers=all_headers,
            verify=str(self.ca_file), timeout=HTTP_TIMEOUT,
        )

    def call(self, method: str, path: str, **kwargs) -> dict:
        """request() that returns the decoded body and raises ApiError on an error status."""
        response = self.request(method, path, **kwargs)
        if not response.ok:
            raise ApiError(response)
        return response.json()

    # objects

    def create_namespace(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict:
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        return self.call("POST", "/api/v1/namespaces",
                         json={"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})

    def create_pod(
        self,
        namespace: str,
        name: str,
        *,
        containers: Sequence[Mapping[str, Any]],
        init_containers: Sequence[Mapping[str, Any]] | None = None,
        owner_references: Sequence[Mapping[str, Any]] | None = None,
        labels: Mapping[str, str] | None = None,
        image_pull_secrets: Iterable[str] | None = None,
        service_account: str | None = None,
    ) -> dict:
        """A pod as a workload controller would create it; it stays Pending (no kubelet)."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if owner_references:
            metadata["ownerReferences"] = [dict(ref) for ref in owner_references]
        spec: dict[str, Any] = {"containers": [dict(c) for c in containers]}
        if init_containers:
            spec["initContainers"] = [dict(c) for c in init_containers]
        if image_pull_secrets:
            spec["imagePullSecrets"] = [{"name": secret} for secret in image_pull_secrets]
        if service_account:
            spec["serviceAccountName"] = service_account
        return self.call("POST", f"/api/v1/namespaces/{namespace}/pods",
                         json={"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})

    def add_ephemeral_container(self, namespace: str, pod: str, *, name: str, image: str) -> dict:
        """What `kubectl debug` does: adds an ephemeral container through its subresource."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/ephemeralcontainers"
        current = self.call("GET", path)
        current["spec"].setdefault("ephemeralContainers", []).append({"name": name, "image": image})
        return self.call("PUT", path, json=current)

    def set_pod_running(
        self, namespace: str, name: str, statuses: Mapping[str, Mapping[str, Any]]
    ) -> dict:
        """Write what a kubelet would: phase Running and one status per container named in
        `statuses` ({container name: {"imageID": ..., "containerID": ..., "ready": ...}}, any
        other containerStatus field may be given too). Each status lands in containerStatuses,
        initContainerStatuses or ephemeralContainerStatuses after where the name is in the
        spec; `image` defaults to the spec's image."""
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        spec = self.call("GET", path)["spec"]
        groups = {
            "containers": "containerStatuses",
            "initContainers": "initContainerStatuses",
            "ephemeralContainers": "ephemeralContainerStatuses",
        }
        known = {c["name"] for key in groups for c in spec.get(key, [])}
        unknown = set(statuses) - known
        if unknown:
            raise ValueError(f"pod {namespace}/{name} has no container named {sorted(unknown)}")
        now = _now()
        status: dict[str, Any] = {"phase": "Running", "startTime": now}
        for spec_key, status_key in groups.items():
            entries = [
                _container_status(c, statuses[c["name"]], init=spec_key == "initContainers", now=now)
                for c in spec.get(spec_key, [])
                if c["name"] in statuses
            ]
            if entries:
                status[status_key] = entries
        ready = all(e.get("ready") for e in status.get("containerStatuses", []))
        conditions = {"PodScheduled": True, "Initialized": True,
                      "ContainersReady": ready, "Ready": ready}
        status["conditions"] = [
            {"type": kind, "status": str(value), "lastTransitionTime": now}
            for kind, value in conditions.items()
        ]
        return self.call("PATCH", f"{path}/status", json={"status": status},
                         headers={"Content-Type": "application/merge-patch+json"})

    def service_account_token(
        self, namespace: str, name: str, *, expiration_seconds: int = 3600
    ) -> str:
        """A bound token for the ServiceAccount, from the TokenRequest API."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        answer = self.call(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=body)
        return answer["status"]["token"]

    # manifests

    def apply_yaml(
        self, source: str | Path, *, namespace: str | None = None, dry_run: bool = False
    ) -> list[dict]:
        """Create, or replace when it exists, every object of a YAML file or text (several
        documents and `kind: List` allowed); returns the objects as the server stored them.
        `namespace` fills in namespaced objects that name none."""
        if isinstance(source, Path) or ("\n" not in source and Path(source).is_file()):
            source = Path(source).read_text()
        objects: list[dict] = []
        for doc in yaml.safe_load_all(source):
            if not doc:
                continue
            objects.extend(doc.get("items", []) if doc.get("kind") == "List" else [doc])
        return [self.apply_object(obj, namespace=namespace, dry_run=dry_run) for obj in objects]

    def apply_object(
        self, obj: Mapping[str, Any], *, namespace: str | None = None, dry_run: bool = False
    ) -> dict:
        body = copy.deepcopy(dict(obj))
        metadata = body.setdefault("metadata", {})
        collection = self.collection_path(body["apiVersion"], body["kind"],
                                          namespace=metadata.get("namespace") or namespace)
        if self._is_namespaced(body["apiVersion"], body["kind"]):
            if namespace and metadata.get("namespace") not in (None, namespace):
                raise ValueError(f"{body['kind']} {metadata.get('name')} is in namespace "
                                 f"{metadata['namespace']}, not {namespace}")
            metadata["namespace"] = metadata.get("namespace") or namespace or "default"
        params = {"dryRun": "All"} if dry_run else None
        response = self.request("POST", collection, json=body, params=params)
        if response.status_code == 409 and metadata.get("name"):
            # Exists: replace it, carrying over the resourceVersion the server wants.
            item = f"{collection}/{metadata['name']}"
            metadata["resourceVersion"] = self.call("GET", item)["metadata"]["resourceVersion"]
            response = self.request("PUT", item, json=body, params=params)
        if not response.ok:
            raise ApiError(response)
        return response.json()

    def collection_path(self, api_version: str, kind: str, *, namespace: str | None = None) -> str:
        """The REST path of a kind's collection, found through API discovery."""
        resource = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if resource["namespaced"]:
            return f"{base}/namespaces/{namespace or 'default'}/{resource['name']}"
        return f"{base}/{resource['name']}"

    def _is_namespaced(self, api_version: str, kind: str) -> bool:
        return self._resource(api_version, kind)["namespaced"]

    def _resource(self, api_version: str, kind: str) -> dict:
        for fresh in (False, True):
            for resource in self._resources(api_version, fresh=fresh):
                if resource["kind"] == kind and "/" not in resource["name"]:
                    return resource
        raise KeyError(f"the API server serves no kind {kind} in {api_version}")

    def _resources(self, api_version: str, *, fresh: bool) -> list[dict]:
        if fresh or api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            response = self.request("GET", path)
            self._discovery[api_version] = response.json()["resources"] if response.ok else []
        return self._discovery[api_version]

    def wait_crd_established(self, name: str, *, timeout: float = 30.0) -> dict:
        """Wait until the CRD is Established and its kinds show in API discovery."""
        deadline = time.monotonic() + timeout
        state = "not found"
        while time.monotonic() < deadline:
            response = self.request(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            if response.ok:
                crd = response.json()
                found = (crd.get("status") or {}).get("conditions") or []
                conditions = {c["type"]: c["status"] for c in found}
                state = f"conditions {conditions}"
                if conditions.get("Established") == "True" and all(
                    self._serves(f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])
                    for v in crd["spec"]["versions"] if v.get("served")
                ):
                    return crd
            time.sleep(0.1)
        raise TimeoutError(f"CRD {name} not established after {timeout}s ({state})")

    def _serves(self, api_version: str, kind: str) -> bool:
        return any(r["kind"] == kind and "/" not in r["name"]
                   for r in self._resources(api_version, fresh=True))


def _container_status(
    container: Mapping[str, Any], given: Mapping[str, Any], *, init: bool, now: str
) -> dict:
    status: dict[str, Any] = {
        "name": container["name"],
        "image": container["image"],
        "ready": True,
        "restartCount": 0,
    }
    if init:
        # An init container that has done its work.
        status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                          "startedAt": now, "finishedAt": now}}
    else:
        status["started"] = True
        status["state"] = {"running": {"startedAt": now}}
    status.update(given)
    return status
