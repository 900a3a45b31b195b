"""A registry simulator for the tests: HTTPS (or HTTP) servers on 127.0.0.1 speaking Quay's,
Clair v4's, Harbor's and the Registry v2 token shapes, from fixtures.

Each `SimHost` is one registry host (127.0.0.1:PORT). It records every request (method, path,
headers, body, time, connection), the requests in flight and their maximum, the TCP
connections opened, and can be told per path to be slow, answer 5xx or 429 with Retry-After,
hang, send garbage or huge bodies, redirect, or demand credentials. A `Gauge` shared by
several hosts measures concurrency across them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import time
import weakref
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import jwt
import pytest

from job.log import RunLog
from job.settings import Settings

COMPAT = Path(__file__).resolve().parents[2] / ".." / "shared" / "compat"
DIGEST_RE = r"sha256:[0-9a-f]{64}"


def compat_file(*parts: str) -> Path:
    return COMPAT.joinpath(*parts)


class Gauge:
    """Requests in flight now, and the most ever seen at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.max = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.max = max(self.max, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    connection: int

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, doc: Any, status: int = 200, **headers: str) -> "Answer":
        return cls(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class Fault:
    """What to do instead of (or before) the normal answer, for requests matching a rule."""

    status: int | None = None  # answer this status (with `body`/`headers`)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # wait this long first (then the fault's answer, or the normal one)
    hang: bool = False  # never answer until the server stops
    huge: int = 0  # stream this many bytes with no Content-Length
    trickle: float = 0.0  # send the headers at once, then `body` one byte every `trickle` seconds
    trickle_headers: bool = False  # with `trickle`: send the status line, then the headers that slowly
    times: int | None = None  # only the first N matching requests
    used: int = 0


Route = Callable[["Request"], Answer]


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    body: bytes
    match: re.Match


class SimHost:
    def __init__(self, *, ca: Any = None, gauge: Gauge | None = None, name: str = "127.0.0.1",
                 address: str = "127.0.0.1", port: int = 0) -> None:
        # `address`/`port`: where to listen (any 127.0.0.0/8 address; port 443 makes a host
        # without a port, as clients that always say https://HOST/ need).
        self.address, self._bind_port = address, port
        self.ca = ca
        self.gauge = gauge or Gauge()
        self.own_gauge = Gauge()
        self.name = name
        self.seen: list[Seen] = []
        self.connections = 0
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.faults: list[tuple[str, re.Pattern, Fault]] = []
        self.delay = 0.0  # latency added to every request
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connection_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._server = self._make_server()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- set-up ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"{self.name}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{self.host}"

    def start(self) -> "SimHost":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fault(self, method: str, pattern: str, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        self.faults.append((method, re.compile(f"^{pattern}$"), fault))
        return fault

    # --- what happened --------------------------------------------------------------------

    def requests(self, method: str | None = None, pattern: str = ".*") -> list[Seen]:
        rx = re.compile(f"^{pattern}$")
        with self._lock:
            return [s for s in self.seen
                    if (method is None or s.method == method) and rx.match(urlsplit(s.path).path)]

    @property
    def max_in_flight(self) -> int:
        return self.own_gauge.max

    # --- serving --------------------------------------------------------------------------

    def _make_server(self) -> ThreadingHTTPServer:
        sim = self
        context = None
        if self.ca is not None:
            cert = self.ca.issue_cert(*dict.fromkeys((self.address, "127.0.0.1", "localhost")))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert.configure_cert(context)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False  # keep-alive threads wait for their client; stop() must not
            request_queue_size = 256

            def get_request(self):  # noqa: ANN201 - http.server API
                conn, addr = super().get_request()
                # Headers and body are written separately; without this, Nagle's algorithm and
                # the client's delayed ACK add ~40 ms to every answer.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with sim._lock:
                    sim.connections += 1
                    conn_id = sim.connections
                if context is not None:
                    # The handshake happens in the connection's own thread, not in accept().
                    conn = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                sim._connection_ids[conn] = conn_id
                return conn, addr

            def handle_error(self, request, client_address):  # noqa: ANN001 - quiet on client hang-ups
                pass

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                sim._handle(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        return Server((self.address, self._bind_port), Handler)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        seen = Seen(h.command, h.path, headers, body, time.monotonic(), self._connection_ids.get(h.connection, 0))
        with self._lock:
            self.seen.append(seen)
        self.gauge.enter()
        self.own_gauge.enter()
        try:
            if self.delay:
                time.sleep(self.delay)
            fault = self._fault_for(h.command, parts.path)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.hang:
                    self.stopping.wait(60)
                    h.close_connection = True
                    return
                if fault.huge:
                    self._stream_huge(h, fault.huge)
                    return
                if fault.trickle:
                    self._trickle(h, fault)
                    return
                if fault.status is not None:
                    self._send(h, Answer(fault.status, fault.body, dict(fault.headers)))
                    return
            answer = self._route(h.command, parts.path, parts.query, headers, body)
            self._send(h, answer)
        finally:
            self.own_gauge.leave()
            self.gauge.leave()

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault_method, rx, fault in self.faults:
                if fault_method in (method, "*") and rx.match(path):
                    if fault.times is not None and fault.used >= fault.times:
                        continue
                    fault.used += 1
                    return fault
        return None

    def _route(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        for route_method, rx, handler in self.routes:
            m = rx.match(path)
            if route_method == method and m:
                return handler(Request(method, path, query, headers, body, m))
        return Answer(404, b'{"error": "not found"}', {"Content-Type": "application/json"})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, answer: Answer) -> None:
        try:
            h.send_response(answer.status)
            for key, value in answer.headers.items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(answer.body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            h.close_connection = True

    def _trickle(self, h: BaseHTTPRequestHandler, fault: Fault) -> None:
        h.close_connection = True
        try:
            if fault.trickle_headers:
                h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            else:
                h.send_response(fault.status or 200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(fault.body)))
                h.end_headers()
            h.wfile.flush()
            for i in range(len(fault.body)):
                if self.stopping.wait(fault.trickle):
                    return
                h.wfile.write(fault.body[i:i + 1])
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    def _stream_huge(self, h: BaseHTTPRequestHandler, size: int) -> None:
        h.close_connection = True
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = b"[" + b"0," * 32767 + b"0"
            sent = 0
            while sent < size and not self.stopping.is_set():
                h.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass


# --- roles: what a host serves ------------------------------------------------------------


def capabilities(base_url: str) -> dict:
    template = f"{base_url}/api/v1/repository/{{namespace}}/{{reponame}}/manifest/{{digest}}/security"
    return {"appName": "io.quay", "capabilities": {"io.quay.manifest-security": {"rest-api-template": template}}}


class QuayRole:
    """/.well-known/app-capabilities and the manifest security endpoint, from fixtures.

    `reports[digest]` is the security document (bytes) for that manifest; others get 404.
    `require` maps an Authorization value that is accepted; when set, anything else gets 401.
    """

    def __init__(self, sim: SimHost, *, capabilities_doc: bytes | None = None) -> None:
        self.sim = sim
        self.reports: dict[str, bytes] = {}
        self.accepted_auth: set[str] = set()
        self.capabilities_doc = capabilities_doc or json.dumps(capabilities(sim.url)).encode()
        sim.route("GET", r"/\.well-known/app-capabilities",
                  lambda r: Answer(200, self.capabilities_doc, {"Content-Type": "application/json"}))
        sim.route("GET", rf"/api/v1/repository/([^/]+)/(.+)/manifest/({DIGEST_RE})/security", self._security)

    def _security(self, r: Request) -> Answer:
        if self.accepted_auth and r.headers.get("authorization") not in self.accepted_auth:
            return Answer.json({"error": "unauthorized"}, 401)
        if "vulnerabilities=true" not in r.query:
            return Answer.json({"error": "vulnerabilities=true missing"}, 400)
        body = self.reports.get(unquote(r.match.group(3)))
        if body is None:
            return Answer.json({"error_message": "Not Found"}, 404)
        return Answer(200, body, {"Content-Type": "application/json"})


class ClairRole:
    """Clair v4's matcher and indexer. A report is 404 until the manifest is indexed (or preset).

    `index_result` is the index_report state returned on POST; when "IndexFinished",
    `report_after_index` (bytes) becomes the manifest's report.
    """

    def __init__(self, sim: SimHost, *, psk: bytes, issuer: str = "quay") -> None:
        self.sim = sim
        self.psk = psk
        self.issuer = issuer
        self.reports: dict[str, bytes] = {}
        self.indexed: list[dict] = []
        self.index_result = "IndexFinished"
        self.report_after_index = b""
        self.jwt_errors: list[str] = []
        sim.route("GET", rf"/matcher/api/v1/vulnerability_report/({DIGEST_RE})", self._report)
        sim.route("POST", r"/indexer/api/v1/index_report", self._index)

    def _authorized(self, r: Request) -> bool:
        header = r.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            self.jwt_errors.append("no bearer token")
            return False
        try:
            jwt.decode(header[7:], self.psk, algorithms=["HS256"], issuer=self.issuer,
                       options={"require": ["exp", "iss"]})
        except jwt.PyJWTError as exc:
            self.jwt_errors.append(str(exc))
            return False
        return True

    def _report(self, r: Request) -> Answer:
        if not self._authorized(r):
            return Answer.json({"message": "unauthorized"}, 401)
        body = self.reports.get(r.match.group(1))
        if body is None:
            return Answer.json({"code": "not-found", "message": "not found"}, 404)
        return Answer(200, body, {"Content-Type": "application/json"})

    def _index(self, r: Request) -> Answer:
        if not self._authorized(r):
            return Answer.json({"message": "unauthorized"}, 401)
        doc = json.loads(r.body)
        self.indexed.append(doc)
        if self.index_result == "IndexFinished" and self.report_after_index:
            self.reports[doc["hash"]] = self.report_after_index
        return Answer.json({"manifest_hash": doc["hash"], "state": self.index_result,
                            "success": self.index_result == "IndexFinished", "err": ""}, 201)


class HarborRole:
    """The artifact vulnerabilities addition; `reports[(project, encoded repo, digest)]`.
    With `accepted_auth` set, other requests get 401."""

    def __init__(self, sim: SimHost) -> None:
        self.reports: dict[tuple[str, str, str], bytes] = {}
        self.accepted_auth: set[str] = set()
        sim.route("GET", rf"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts/({DIGEST_RE})"
                         r"/additions/vulnerabilities", self._additions)

    def _additions(self, r: Request) -> Answer:
        if self.accepted_auth and r.headers.get("authorization") not in self.accepted_auth:
            return Answer.json({"errors": [{"code": "UNAUTHORIZED"}]}, 401)
        key = (r.match.group(1), r.match.group(2), r.match.group(3))
        body = self.reports.get(key)
        if body is None:
            return Answer.json({"errors": [{"code": "NOT_FOUND", "message": "artifact not found"}]}, 404)
        return Answer(200, body, {"Content-Type": "application/json"})


class TokenRegistryRole:
    """A Registry v2 that demands a Bearer token from its token service (this same host, /token),
    which wants Basic `user:password`. `manifests[(repo, digest)]` = (media type, bytes)."""

    def __init__(self, sim: SimHost, *, user: str, password: str) -> None:
        self.sim = sim
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.tokens: set[str] = set()
        sim.route("GET", r"/token", self._token)
        sim.route("GET", rf"/v2/(.+)/manifests/({DIGEST_RE})", self._manifest)

    def _token(self, r: Request) -> Answer:
        if r.headers.get("authorization") != self.basic:
            return Answer.json({"errors": [{"code": "UNAUTHORIZED"}]}, 401)
        token = f"tok-{len(self.tokens)}"
        self.tokens.add(token)
        return Answer.json({"token": token, "expires_in": 300})

    def _manifest(self, r: Request) -> Answer:
        repo, digest = r.match.group(1), r.match.group(2)
        header = r.headers.get("authorization", "")
        if not (header.startswith("Bearer ") and header[7:] in self.tokens):
            challenge = (f'Bearer realm="{self.sim.url}/token",service="sim",'
                         f'scope="repository:{repo}:pull"')
            return Answer.json({"errors": [{"code": "UNAUTHORIZED"}]}, 401, **{"WWW-Authenticate": challenge})
        found = self.manifests.get((repo, digest))
        if found is None:
            return Answer.json({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, 404)
        media_type, body = found
        return Answer(200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest})


# --- a CONNECT proxy, to show that proxies from the environment are used --------------------


class ConnectProxy:
    """A minimal HTTPS (CONNECT) proxy on 127.0.0.1 that counts the tunnels it opened. `aliases`
    are host names it resolves itself (as a proxy at a network's edge knows names its clients do not)."""

    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = aliases or {}
        self.tunnels: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            with self._lock:
                self.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((self.aliases.get(host, host), int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            self._pipe(client, upstream)
        except OSError:
            pass

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


# --- pytest fixtures (imported by the registry test modules) ---------------------------------

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy")


def digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def compat_bytes(*parts: str) -> bytes:
    """A sample's bytes; skip (fail under CI=true) when ../shared/compat is absent."""
    path = compat_file(*parts)
    if not path.exists():
        message = f"compat sample {path} not found (the ../shared/compat folder is absent)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path.read_bytes()


class RecordingLog(RunLog):
    def __init__(self) -> None:
        super().__init__(progress="never")
        self.lines: list[tuple[str, str]] = []
        self.progress_calls: list[tuple[str, int, int]] = []

    def _emit(self, level: str, event: str, message: str, fields: dict) -> None:
        with self._lock:
            self.lines.append((level, message))

    def progress(self, label: str, done: int, total: int) -> None:
        self.progress_calls.append((label, done, total))

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.lines if level is None or lvl == level]


@pytest.fixture(scope="session")
def sim_ca(tmp_path_factory):
    """(trustme CA, path of its PEM file): the throwaway CA of every simulated host."""
    import trustme

    ca = trustme.CA()
    path = tmp_path_factory.mktemp("sim-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


@pytest.fixture
def sims(sim_ca, monkeypatch):
    """Factory of started SimHosts (HTTPS with the test CA unless tls=False), stopped afterwards.
    Proxy variables are cleared so that loopback traffic goes direct unless a test sets them."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    started: list[SimHost] = []

    def make(*, tls: bool = True, gauge: Gauge | None = None, name: str = "127.0.0.1") -> SimHost:
        host = SimHost(ca=sim_ca[0] if tls else None, gauge=gauge, name=name).start()
        started.append(host)
        return host

    yield make
    for host in started:
        host.stop()


@pytest.fixture
def registry_settings(sim_ca):
    """Settings for a run against simulated hosts: their CA as --extra-certs, short timeouts."""

    def make(**changes) -> Settings:
        base = dict(extra_certs=sim_ca[1], connect_timeout=2.0, read_timeout=2.0, retries=2, retry_budget=10.0,
                    breaker_threshold=5, global_pull_secret="", registry_concurrency=8, registry_host_concurrency=4)
        base.update(changes)
        return Settings(**base)

    return make
