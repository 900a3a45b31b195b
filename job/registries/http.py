"""The one HTTP client of a run: pooled connections, bounds, timeouts, size cap, retries, breaker.

Every registry, Clair and token request goes through `HttpClient.request`, which
- holds a per-host slot and then a global slot while a request is on the wire (never while
  it sleeps between retries), so neither bound is ever exceeded;
- retries connection errors, timeouts, 429 and 5xx with exponential backoff and jitter,
  honouring Retry-After, within `retries` and the manifest's time budget;
- reads at most max_response_mb of a body (counting decoded bytes), and holds the bodies of all
  requests, and what decoding them takes, within registry_memory_mb (see bounds.py);
- cuts an attempt still running after request_deadline, and every request at the scan stage's
  deadline, whatever the registry trickles;
- follows redirects itself: Authorization is dropped when the host changes and https is never
  downgraded to http, so credentials only ever reach the host they were meant for;
- gives a host up for the run after breaker_threshold consecutive failures.
Underneath, transport.py's urllib3 pools: proxies from the environment (NO_PROXY too), the run's
CA trust, no ~/.netrc, no cookies.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urljoin, urlsplit

from urllib3.exceptions import DecodeError, HTTPError

from job import __version__
from job.codec import decode_json
from job.registries.bounds import ByteBudget, TooBig, Watch, Watchdog, decode_cost
from job.registries.breaker import HostBreaker
from job.registries.failures import BadResponse, ScanFailure, Unreachable, excerpt
from job.registries.retry import UNAVAILABLE, backoff_delay, is_retryable
from job.registries.tls import Trust
from job.retry_after import parse_retry_after
from job.registries.transport import NotSendable, Transport, connection_reason
from job.settings import Settings

USER_AGENT = f"imvjob/{__version__}"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    #: Case-insensitive.
    headers: Mapping[str, str]
    #: A bytearray when read from the network: turned into bytes, it would be held twice meanwhile.
    body: bytes | bytearray
    url: str
    #: How many times the request was sent (1 + retries).
    attempts: int = 1
    #: Reserves, once, what decoding the body takes of the run's memory budget (raises when it cannot).
    reserve: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def json(self, what: str) -> Any:
        """The body as JSON; garbage (HTML, invalid JSON) is a BadResponse naming `what`."""
        if self.reserve is not None:
            self.reserve()
        try:
            return decode_json(self.body)
        except (ValueError, UnicodeDecodeError):
            kind = self.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
            raise BadResponse(f"{what} is not JSON ({kind}, HTTP {self.status}): {excerpt(self.body)}") from None

    def decoded(self, read: Callable[[bytes | bytearray], T]) -> T:
        """read(body), for a decoder of the caller's own, once the memory is reserved as for json()."""
        if self.reserve is not None:
            self.reserve()
        return read(self.body)


@dataclass(eq=False)
class RetryBudget:
    """One manifest's allowance, shared by all its requests: retry time, the scan stage's
    deadline, and the bytes of the run's memory budget it holds until its scan ends."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    #: time.monotonic() at which the scan stage ends.
    deadline: float = math.inf
    held: int = 0

    def remaining(self) -> float:
        now = time.monotonic()
        return min(self.seconds - (now - self.started), self.deadline - now)


class DeadlinePassed(ScanFailure):
    """The scan stage's deadline came before this manifest's answer."""


class _Starved(Exception):
    """No memory for an answer before the request's deadline."""


class _Cut(Exception):
    """The request's deadline cut it."""


class _HostStats:
    __slots__ = ("requests", "retries")

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


class HttpClient:
    def __init__(self, settings: Settings, *, trust: Trust, hosts_hint: int = 10) -> None:
        self.settings = settings
        self.trust = trust
        self.max_bytes = max(1, settings.max_response_mb) * 1024 * 1024
        # At least one answer of the largest size fits.
        self.memory_mb = max(settings.registry_memory_mb, settings.max_response_mb, 1)
        self.memory = ByteBudget(self.memory_mb * 1024 * 1024)
        self.watchdog = Watchdog()
        # Proxies from the environment, CA trust never from it (see tls.py), no credentials from
        # ~/.netrc, no cookies: see transport.py.
        self.transport = Transport(trust, user_agent=USER_AGENT, hosts=hosts_hint,
                                   per_host=max(1, settings.registry_host_concurrency))
        self._global = threading.BoundedSemaphore(max(1, settings.registry_concurrency))
        self._lock = threading.Lock()
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._breakers: dict[str, HostBreaker] = {}
        self._stats: dict[str, _HostStats] = {}

    # --- per-host state -------------------------------------------------------------------

    def _host(self, netloc: str) -> tuple[threading.BoundedSemaphore, HostBreaker, _HostStats]:
        with self._lock:
            if netloc not in self._host_slots:
                self._host_slots[netloc] = threading.BoundedSemaphore(max(1, self.settings.registry_host_concurrency))
                self._breakers[netloc] = HostBreaker(self.settings.breaker_threshold)
                self._stats[netloc] = _HostStats()
            return self._host_slots[netloc], self._breakers[netloc], self._stats[netloc]

    def breaker(self, netloc: str) -> HostBreaker:
        return self._host(netloc.lower())[1]

    def stats(self) -> dict[str, tuple[int, int]]:
        """{host: (requests sent, of which retries)}."""
        with self._lock:
            return {host: (s.requests, s.retries) for host, s in self._stats.items()}

    def close(self) -> None:
        self.watchdog.close()
        self.transport.close()

    def release(self, budget: RetryBudget) -> None:
        """The manifest's scan is over: the bytes it held go back to the run's memory budget."""
        self.memory.release(budget)

    def deadline_passed(self) -> DeadlinePassed:
        return DeadlinePassed(f"the scan stage's deadline ({self.settings.scan_deadline:g}s, --scan-deadline) "
                              "passed before this manifest was answered")

    def _stage_check(self, budget: RetryBudget) -> None:
        if time.monotonic() >= budget.deadline:
            raise self.deadline_passed()

    # --- requests -------------------------------------------------------------------------

    def request(self, method: str, url: str, *, budget: RetryBudget, label: str = "registry",
                headers: Mapping[str, str] | None = None, json_body: Any = None,
                definite: frozenset[int] = frozenset(), follow_redirects: bool = True,
                read_timeout: float | None = None) -> Reply:
        """Send one logical request (retries and redirects included) and return the final answer.

        Raises Unreachable when the host cannot be reached (or its breaker is open), and
        BadResponse when the body is larger than the cap. Any HTTP status is returned as is,
        after retries for the retryable ones ran out.
        """
        send_headers = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._send_with_retries(method, url, budget=budget, label=label, headers=send_headers,
                                            json_body=json_body, definite=definite,
                                            read_timeout=read_timeout or self.settings.read_timeout)
            location = reply.headers.get("Location")
            if not (follow_redirects and reply.status in _REDIRECTS and location and method == "GET"):
                return reply
            try:
                target = urljoin(url, location)
                old, new = urlsplit(url), urlsplit(target)
            except ValueError:  # "https://[::1/": the Location is the registry's
                raise BadResponse(f"{label} redirected to a location that is not a URL") from None
            if new.scheme not in ("http", "https"):
                raise BadResponse(f"{label} redirected to a non-HTTP location")
            if old.scheme == "https" and new.scheme == "http":
                raise BadResponse(f"{label} redirected from https to plain http; not followed")
            if new.netloc.lower() != old.netloc.lower():
                send_headers = {k: v for k, v in send_headers.items() if k.lower() != "authorization"}
            url = target
        raise BadResponse(f"{label} redirected more than {MAX_REDIRECTS} times")

    def _send_with_retries(self, method: str, url: str, *, budget: RetryBudget, label: str,
                           headers: dict[str, str], json_body: Any, definite: frozenset[int],
                           read_timeout: float) -> Reply:
        netloc = _netloc(url)
        slot, breaker, stats = self._host(netloc)
        timeout = (self.settings.connect_timeout, read_timeout)
        # Everything an attempt may take, the whole answer read; a request given a longer read
        # timeout than the run's (Clair's indexing) gets at least that.
        allowed = self.settings.request_deadline
        if read_timeout > self.settings.read_timeout:
            allowed = max(allowed, read_timeout)
        attempt = 0
        while True:
            if breaker.is_open:
                raise Unreachable(f"{label} unreachable: {breaker.reason}")
            self._stage_check(budget)
            with self._lock:
                stats.requests += 1
                stats.retries += 1 if attempt else 0
            watch = None
            try:
                with self._slot(slot, budget), self._slot(self._global, budget):
                    with self.watchdog.watch(min(time.monotonic() + allowed, budget.deadline)) as watch:
                        reply = self._send_once(method, url, headers=headers, json_body=json_body, label=label,
                                                timeout=timeout, attempts=attempt + 1, budget=budget,
                                                watch=watch)
            except NotSendable:
                # E.g. a pull secret whose token holds a line break: no retry can help, and the
                # message would quote the header, so it is not repeated.
                raise BadResponse(f"{label} request could not be sent (invalid header value or URL)") from None
            except DecodeError:
                raise BadResponse(f"{label} answer could not be decoded (bad Content-Encoding)") from None
            except (HTTPError, OSError, _Starved, _Cut) as exc:
                self._stage_check(budget)  # cut by the stage's deadline: that is the reason
                if isinstance(exc, _Starved):
                    reason = f"no memory for the answer within {allowed:g}s (--registry-memory-mb)"
                elif watch is not None and watch.expired:
                    reason = f"no complete answer within {allowed:g}s (--request-deadline)"
                else:
                    reason = connection_reason(exc, timeout)
                breaker.failure(reason)
                wait = self._next_wait(attempt, None, budget)
                if wait is None or breaker.is_open:
                    detail = breaker.reason if breaker.is_open else reason
                    raise Unreachable(f"{label} unreachable: {detail}") from None
            else:
                if reply.status in UNAVAILABLE:
                    breaker.failure(f"HTTP {reply.status} from {label}")
                else:
                    breaker.success()
                if not is_retryable(reply.status, definite=definite):
                    return reply
                retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                wait = self._next_wait(attempt, retry_after, budget)
                if wait is None:
                    return reply
            attempt += 1
            # Sleep without holding a slot; wake at once if the host is given up meanwhile.
            breaker.opened.wait(wait)

    def _next_wait(self, attempt: int, retry_after: float | None, budget: RetryBudget) -> float | None:
        """Seconds to wait before the next attempt, or None when no retry is left."""
        if attempt >= self.settings.retries:
            return None
        wait = backoff_delay(attempt)
        if retry_after is not None:
            wait = max(wait, retry_after)
        if wait > budget.remaining():
            return None
        return wait

    def _slot(self, semaphore: threading.BoundedSemaphore, budget: RetryBudget) -> "_Held":
        """Hold `semaphore`, waiting no later than the scan stage's deadline."""
        wait = budget.deadline - time.monotonic()
        if not semaphore.acquire(timeout=None if wait == math.inf else max(0.0, wait)):
            raise self.deadline_passed()
        return _Held(semaphore)

    def _charge(self, n: int, *, budget: RetryBudget, until: float, label: str) -> bool:
        try:
            return self.memory.take(n, holder=budget, until=until)
        except TooBig:
            raise BadResponse(f"{label} answer would take more than {self.memory_mb} MiB once decoded "
                              "(--registry-memory-mb)") from None

    def _charge_decoding(self, n: int, *, budget: RetryBudget, label: str) -> None:
        if n <= 0:
            return
        until = min(time.monotonic() + self.settings.request_deadline, budget.deadline)
        if not self._charge(n, budget=budget, until=until, label=label):
            self._stage_check(budget)
            raise BadResponse(f"{label} answer: no memory to decode it within {self.settings.request_deadline:g}s "
                              "(--registry-memory-mb)")

    def _send_once(self, method: str, url: str, *, headers: dict[str, str], json_body: Any, label: str,
                   timeout: tuple[float, float], attempts: int, budget: RetryBudget, watch: Watch) -> Reply:
        response = self.transport.open(method, url, headers=headers, json_body=json_body, timeout=timeout)
        complete = False
        try:
            declared = response.headers.get("Content-Length", "")
            length = int(declared) if declared.isascii() and declared.isdigit() else 0  # "²" is a digit too
            if length > self.max_bytes:
                raise self._too_large(label)
            # An answer of known length takes its body and what decoding it takes as text at once:
            # answers read in part would otherwise wait on each other.
            paid = 3 * length
            if paid and not self._charge(paid, budget=budget, until=watch.deadline, label=label):
                raise _Starved
            body = bytearray()
            # An answer of known length, already paid for, is read in one go: each read costs
            # more CPU than copying the bytes it returns.
            size = min(max(_CHUNK, length), self.max_bytes)
            while chunk := response.read(size):  # decoded by its Content-Encoding
                if len(body) + len(chunk) > self.max_bytes:
                    raise self._too_large(label)
                # Held until the manifest's scan ends, with every other answer in flight.
                beyond = len(body) + len(chunk) - max(len(body), length)
                if beyond > 0:
                    if not self._charge(beyond, budget=budget, until=watch.deadline, label=label):
                        raise _Starved
                    paid += beyond
                body += chunk
            if watch.expired:  # cut while the headers came: what was read looks complete, and is not
                raise _Cut
            complete = True
            reserved = False

            def reserve() -> None:
                nonlocal reserved
                if not reserved:
                    reserved = True
                    self._charge_decoding(len(body) + decode_cost(body) - paid, budget=budget, label=label)

            return Reply(status=response.status, headers=response.headers, body=body, url=url, attempts=attempts,
                         reserve=reserve)
        finally:
            watch.stop()
            if not complete:  # its connection holds the rest of an answer, or was cut: not reused
                response.close()
            response.release_conn()

    def _too_large(self, label: str) -> BadResponse:
        return BadResponse(f"{label} response larger than {self.settings.max_response_mb} MiB")


class _Held:
    """Releases a semaphore acquired by HttpClient._slot."""

    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: threading.BoundedSemaphore) -> None:
        self._semaphore = semaphore

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()
