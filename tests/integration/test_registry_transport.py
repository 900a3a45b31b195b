"""The wire under the registry client (job/registries/transport.py): what requests used to do for
it, a proxy's credentials from the environment, is still done, and goes to the proxy alone."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time

from registry_sim import (Answer, ConnectProxy, QuayRole, RecordingLog, capabilities, compat_bytes,  # noqa: F401
                          digest, registry_settings, sim_ca, sims)

from job.model import ImageRef, ScanRequest, ScanState
from job.registries import scan_manifests


class RecordingProxy(ConnectProxy):
    """A CONNECT proxy that also keeps the head of every request it was sent."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        super().__init__()

    def _tunnel(self, client: socket.socket) -> None:
        head, deadline = b"", time.monotonic() + 5
        while b"\r\n\r\n" not in head and time.monotonic() < deadline:
            head = client.recv(65536, socket.MSG_PEEK)  # left for the proxy to read
            time.sleep(0.01)
        self.heads.append(head)
        super()._tunnel(client)


def test_proxy_credentials_from_the_environment_reach_the_proxy_and_only_it(sims, registry_settings,
                                                                           monkeypatch):
    host = sims()
    QuayRole(host).reports[digest(1)] = compat_bytes("quay", "noVulns.json")
    proxy = RecordingProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://scan%40corp:s3cret@127.0.0.1:{proxy.port}")
        ref = ImageRef(host.host, "org/app", digest(1))
        results = scan_manifests([ScanRequest(ref)], registry_settings(), secrets=None, log=RecordingLog())
    finally:
        proxy.stop()
    assert results[ref].state is ScanState.SCANNED
    expected = b"proxy-authorization: basic " + base64.b64encode(b"scan@corp:s3cret").lower()
    assert proxy.heads and all(expected in head.lower() for head in proxy.heads)
    assert proxy.tunnels and set(proxy.tunnels) == {host.host}
    assert host.seen and not any("proxy-authorization" in s.headers for s in host.seen)
    assert not any("authorization" in s.headers for s in host.seen)


def test_a_redirect_to_what_is_not_a_url_is_that_manifest_s_error(sims, registry_settings):
    host = sims()
    ref = ImageRef(host.host, "org/app", digest(1))
    host.route("GET", r"/api/v1/repository/.+/security", lambda r: Answer(302, b"", {"Location": "https://[::1/x"}))
    QuayRole(host)
    log = RecordingLog()
    results = scan_manifests([ScanRequest(ref)], registry_settings(), secrets=None, log=log)
    assert (results[ref].state, results[ref].detail) == (
        ScanState.ERROR, "registry redirected to a location that is not a URL")
    assert not log.messages("error")


def test_a_content_length_of_digits_that_are_not_ascii_is_no_declared_length(registry_settings):
    # "²" is a digit to str.isdigit, and not to int(): the answer is read until the connection closes.
    body = compat_bytes("quay", "noVulns.json")
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        for _ in range(2):  # discovery, then the manifest's report
            client, _ = server.accept()
            with client:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += client.recv(65536)
                doc = body if b"/security" in head.split(b"\r\n")[0] else json.dumps(capabilities(
                    f"http://127.0.0.1:{server.getsockname()[1]}")).encode()
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \xb2\r\n"
                               b"Connection: close\r\n\r\n" + doc)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    host = f"127.0.0.1:{server.getsockname()[1]}"
    ref = ImageRef(host, "org/app", digest(1))
    try:
        results = scan_manifests([ScanRequest(ref)], registry_settings(insecure_registry=(f"http://{host}",)),
                                 secrets=None, log=RecordingLog())
    finally:
        server.close()
    assert results[ref].state is ScanState.SCANNED, results[ref].detail
