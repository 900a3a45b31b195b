"""Webhook receivers on 127.0.0.1 that record what they are sent and check its shape against what
Slack (incoming webhooks, Block Kit) and Microsoft Teams (Workflows webhook: a message with an
Adaptive Card) document; each path can be told to answer 429 with Retry-After, 5xx, or hang."""
from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receivers:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    #: path → answers to give in turn: (status, headers, seconds to hang first); then 200.
    script: dict[str, list[tuple[int, dict[str, str], float]]] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        scheme = "https" if isinstance(self.server.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def serve(*, tls: "ssl.SSLContext | None" = None) -> Receivers:
    receivers: Receivers

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receivers.received.append(Received(self.path, dict(self.headers), body, time.monotonic()))
            answers = receivers.script.get(self.path) or []
            status, headers, hang = answers.pop(0) if answers else (200, {}, 0.0)
            if hang:
                receivers.released.wait(hang)
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            text = b"ok" if status == 200 else b"invalid_payload"
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receivers = Receivers(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receivers


def check_slack(payload: dict) -> None:
    """Slack's documented limits: a text fallback, at most 50 blocks, a header's plain_text at most
    150 characters, a section's text at most 3,000, context elements of mrkdwn."""
    assert isinstance(payload["text"], str) and payload["text"]
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert block["type"] in ("header", "section", "context", "divider")
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn" and 0 < len(block["text"]["text"]) <= 3000
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(e["type"] == "mrkdwn" and e["text"] for e in block["elements"])


def check_teams(payload: dict, raw: bytes) -> None:
    """A Workflows webhook's message: one Adaptive Card attachment, under 28 KB."""
    assert len(raw) <= 28 * 1024
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] in ("1.2", "1.3", "1.4", "1.5")
    for element in card["body"]:
        assert element["type"] == "TextBlock" and isinstance(element["text"], str) and element["text"]
    for action in card.get("actions", []):
        assert action["type"] == "Action.OpenUrl" and action["url"].startswith("https://")
