"""Feeds fetched from an https mirror, trusted through --extra-certs as the registries are."""
from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
import time

import pytest
import trustme

from job import feeds
from job.registries.tls import Trust
from tests.feed_files import epss_text, kev_doc

TODAY = dt.date(2026, 5, 4).toordinal()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if self.path == "/slow":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):  # one byte a second: no read timeout ends it, the deadline does
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    import orjson
    _Handler.routes = {"/kev.json": orjson.dumps(kev_doc({"CVE-2024-0001": ("2026-05-10", True)})),
                       "/epss.csv": epss_text({"CVE-2024-0001": 0.5}).encode(),
                       "/big": b"x" * (2 << 20), "/slow": b""}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield f"https://127.0.0.1:{server.server_address[1]}", str(ca_file)
    server.shutdown()


def _load(base, trust, kev, epss="", deadline=feeds.FETCH_DEADLINE):
    from tests.factories import make_feature, make_ref, make_result, make_vuln
    results = [make_result(make_ref(), make_feature("openssl", "3", make_vuln("CVE-2024-0001")))]
    return feeds.load(kev_source=base + kev, epss_source=base + epss if epss else "", results=results,
                      today=TODAY, max_age_days=7, ssl_context=trust.context if trust else None, deadline=deadline)


def test_feeds_from_an_https_mirror_with_the_extra_ca(mirror):
    base, ca_file = mirror
    trust = Trust(extra_certs=ca_file, insecure_registry=())
    got = _load(base, trust, "/kev.json", "/epss.csv")
    assert got.kev["CVE-2024-0001"].ransomware and got.epss == {"CVE-2024-0001": 0.5}
    assert [s.state for s in got.status] == ["ok", "ok"]


def test_an_untrusted_mirror_a_404_a_huge_and_a_slow_body_are_reported_not_raised(mirror, monkeypatch):
    base, ca_file = mirror
    untrusted = _load(base, Trust(extra_certs="", insecure_registry=()), "/kev.json").status[0]
    assert untrusted.state == "missing" and "SSLError" in untrusted.detail
    trust = Trust(extra_certs=ca_file, insecure_registry=())
    assert _load(base, trust, "/none").status[0].detail == "HTTP 404"
    monkeypatch.setattr(feeds, "MAX_KEV_BYTES", 1 << 20)
    assert _load(base, trust, "/big").status[0].detail == "larger than 1 MiB"
    started = time.monotonic()
    slow = _load(base, trust, "/slow", deadline=1.0).status[0]
    assert slow.state == "missing" and "within 1 s" in slow.detail
    assert time.monotonic() - started < 5
