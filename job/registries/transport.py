"""The wire under HttpClient: urllib3's connection pools, one set per proxy and per trust.

The client used requests before; requests' work on every request (preparing it, merging
session settings, hooks, cookies, building its Response) was most of the client's CPU per
registry answer (bench/bench_scan.py). What requests did that the job relies on is done here:
- proxies from HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, looked up once per scheme and host; HTTPS
  goes through a CONNECT tunnel; credentials in the proxy's URL become Proxy-Authorization;
- certificates verified against the run's one SSLContext (tls.py), not for --insecure-registry
  hosts; never a CA from the environment, nor credentials (urllib3 reads no ~/.netrc), nor
  cookies (it keeps none);
- no redirect followed and no retry here: http.py does both by its own rules;
- header values checked before anything is sent (a line break in a pull secret's token);
- the headers requests sent by default (Accept, Accept-Encoding, Connection) sent as before, the
  body decoded by its Content-Encoding as it is read.
"""
from __future__ import annotations

import json
import re
import ssl
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests.utils
import urllib3
from requests.exceptions import InvalidHeader
from urllib3.exceptions import (ConnectTimeoutError, LocationValueError, NewConnectionError, ProtocolError,
                                ProxySchemeUnknown, ReadTimeoutError, SSLError)
from urllib3.util.ssl_ import create_urllib3_context

from job.registries.bounds import watched_pools
from job.registries.tls import Trust

#: What requests sent with every request; the caller's headers of the same names win.
DEFAULT_HEADERS = {"Accept-Encoding": requests.utils.DEFAULT_ACCEPT_ENCODING, "Accept": "*/*",
                   "Connection": "keep-alive"}
_TLS_REASONS = (
    (re.compile(r"certificate verify failed: ([^()'\"\]]+)"), "certificate verify failed: {0}"),
    (re.compile(r"(hostname mismatch[^'\"()]*)", re.IGNORECASE), "{0}"),
    (re.compile(r"wrong.version.number", re.IGNORECASE), "the server does not speak TLS"),
)
_MARKERS = (("Read timed out", None), ("Connection refused", "connection refused"),
            ("Name or service not known", "host name not found"),
            ("nodename nor servname", "host name not found"),
            ("Temporary failure in name resolution", "host name not found"),
            ("Connection reset", "connection reset"),
            ("RemoteDisconnected", "connection closed without an answer"),
            ("Network is unreachable", "network unreachable"),
            ("No route to host", "no route to host"))


class NotSendable(Exception):
    """The request cannot be sent as it is (an invalid header value, URL or proxy)."""


class Transport:
    """Connection pools for the run: one PoolManager per (proxy, verified or not)."""

    def __init__(self, trust: Trust, *, user_agent: str, hosts: int, per_host: int) -> None:
        self.trust = trust
        self._defaults = {"User-Agent": user_agent, **DEFAULT_HEADERS}
        self._lowered = {name.lower(): name for name in self._defaults}
        self._hosts, self._per_host = hosts, per_host
        self._unverified: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._managers: dict[tuple[str, bool], urllib3.PoolManager] = {}
        self._proxies: dict[tuple[str, str], str] = {}

    def open(self, method: str, url: str, *, headers: Mapping[str, str], json_body: Any,
             timeout: tuple[float, float]) -> urllib3.BaseHTTPResponse:
        """Send the request; the answer's body is left to be read (preload_content=False)."""
        parts = urlsplit(url)
        host = parts.netloc.lower()
        send = dict(self._defaults)
        for name, value in headers.items():
            send.pop(self._lowered.get(name.lower(), ""), None)
            send[name] = value
        body = None
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=False).encode()
            send.setdefault("Content-Type", "application/json")
        try:
            for item in send.items():
                requests.utils.check_header_validity(item)
            manager = self._manager(self._proxy(parts.scheme, host, url), self.trust.verify(host) is not False)
            return manager.urlopen(method, url, body=body, headers=send, redirect=False, retries=False,
                                   timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                                   preload_content=False, decode_content=True)
        except (InvalidHeader, LocationValueError, ProxySchemeUnknown, UnicodeEncodeError) as exc:
            raise NotSendable(type(exc).__name__) from None

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def _proxy(self, scheme: str, host: str, url: str) -> str:
        """The environment's proxy for this scheme and host ('' when none, or NO_PROXY bypasses it);
        read once: requests read the whole environment again on every request."""
        key = (scheme, host)
        found = self._proxies.get(key)
        if found is None:
            proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)) or ""
            found = self._proxies[key] = requests.utils.prepend_scheme_if_needed(proxy, "http") if proxy else ""
        return found

    def _manager(self, proxy: str, verified: bool) -> urllib3.PoolManager:
        manager = self._managers.get((proxy, verified))
        if manager is not None:
            return manager
        with self._lock:
            manager = self._managers.get((proxy, verified))
            if manager is None:
                manager = self._managers[proxy, verified] = self._new_manager(proxy, verified)
        return manager

    def _new_manager(self, proxy: str, verified: bool) -> urllib3.PoolManager:
        if verified:
            tls: dict[str, Any] = {"ssl_context": self.trust.context, "cert_reqs": ssl.CERT_REQUIRED}
        else:
            if self._unverified is None:
                # Built once: urllib3 would build a context, and load the system's CAs into it, for
                # every new connection.
                self._unverified = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
                self._unverified.check_hostname = False
            tls = {"ssl_context": self._unverified, "cert_reqs": ssl.CERT_NONE, "assert_hostname": False}
        pools = {"num_pools": max(10, self._hosts), "maxsize": self._per_host, "block": False, **tls}
        if proxy:
            user, password = requests.utils.get_auth_from_url(proxy)
            proxy_headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
            manager: urllib3.PoolManager = urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **pools)
        else:
            manager = urllib3.PoolManager(**pools)
        # Connections are handed to the request's deadline watch (bounds.py), proxied ones too.
        manager.pool_classes_by_scheme = watched_pools(manager.pool_classes_by_scheme)
        return manager


def connection_reason(exc: BaseException, timeout: tuple[float, float]) -> str:
    """A short reason for a connection-level failure (no URLs, no library noise)."""
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        return f"no connection within {timeout[0]:g}s"
    if isinstance(exc, ReadTimeoutError):
        return f"no answer within {timeout[1]:g}s"
    text = str(exc)
    if isinstance(exc, (SSLError, ssl.SSLError)):
        for pattern, words in _TLS_REASONS:
            found = pattern.search(text)
            if found:
                return "TLS error: " + words.format(*(g.strip() for g in found.groups()))
        return "TLS error"
    for marker, words in _MARKERS:
        if marker in text:
            return words or f"no answer within {timeout[1]:g}s"
    if isinstance(exc, ProtocolError) and text.startswith("Connection broken"):  # while the body was read
        return "connection broken while reading the answer"
    return f"connection failed ({type(exc).__name__})"
