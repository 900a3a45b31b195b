"""Delivering chat messages: Slack, Teams and generic JSON webhooks, per owner and global.

A webhook URL is a credential (whoever holds it can post), so URLs live only in a mounted Secret
(--webhook-urls-file: a folder of one file per key, or a YAML file of key: URL) or in
IMVJOB_WEBHOOK_URLS, and never appear in logs, reports or summary.json: a webhook is named by its
key. Each webhook has a total deadline (--webhook-deadline) across its retries (429 after its
Retry-After, 5xx, connection errors); one that fails is reported (exit 2) and never holds the others.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from job.codec import read_state_json, write_file
from job.errors import ConfigError
from job.log import RunLog
from job.notify.chat import RENDER, Notice, attention, routes, unsent
from job.notify.smtp import tls_context
from job.report.text import file_name
from job.report.view import ReportContext
from job.retry_after import parse_retry_after
from job.settings import MAX_SECRET_BYTES, Settings, read_secret, read_small_file

URLS_ENV = "IMVJOB_WEBHOOK_URLS"
HMAC_ENV = "IMVJOB_WEBHOOK_HMAC_SECRET"
STATE_FILE = "webhooks-sent.json"
CHECK_DIR = "webhooks"
KIND_PREFIXES = ("slack:", "teams:", "json:")
MAX_KEYS = 1000


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "slack", "teams", "json"
    url: str

    def __repr__(self) -> str:  # never the URL, even in a traceback
        return f"Target({self.kind})"


@dataclass
class WebhookOutcome:
    sent: int = 0
    failed: int = 0
    unchanged: int = 0  # webhooks with nothing new to say
    files: list[Path] = field(default_factory=list)


def kind_of(url: str) -> tuple[str, str]:
    """(kind, URL) of a Secret entry: an explicit `slack:`/`teams:`/`json:` prefix, else by host."""
    for prefix in KIND_PREFIXES:
        if url.startswith(prefix) and not url.startswith(prefix + "//"):
            return prefix[:-1], url[len(prefix):]
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack", url
    if host.endswith((".logic.azure.com", ".powerplatform.com", ".webhook.office.com")):
        return "teams", url
    return "json", url


def load_targets(settings: Settings) -> dict[str, Target]:
    """I/O: the webhooks by key, from the mounted Secret (file or folder) or the environment."""
    source = settings.webhook_urls_file
    if source and Path(source).is_dir():
        files = sorted(p for p in Path(source).iterdir() if not p.name.startswith(".") and p.is_file())
        raw = {p.name: read_small_file(str(p), limit=MAX_SECRET_BYTES, what="webhook file") for p in files[:MAX_KEYS]}
    else:
        text = read_secret(URLS_ENV, source)
        if not text:
            return {}
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError:
            raw = None
        if not isinstance(raw, dict):
            # Never quote it: the text holds URLs.
            raise ConfigError(f"webhook URLs ({source or URLS_ENV}) must be a YAML mapping of key: URL")
    targets = {}
    for key, value in raw.items():
        kind, url = kind_of(str(value).strip())
        if urlsplit(url).scheme not in ("https", "http") or not urlsplit(url).hostname:
            raise ConfigError(f"webhook {key!r}: not an http(s) URL")
        targets[str(key).strip()] = Target(kind, url)
    return targets


def refusal(url: str, allowed: tuple[str, ...]) -> str:
    """Why a URL may not be posted to ('' when it may): hosts outside --webhook-allowed-host, and
    plain http to a host the list does not name."""
    from job.registries.refs import host_matches

    parts = urlsplit(url)
    netloc, host = (parts.netloc.rsplit("@", 1)[-1]).lower(), (parts.hostname or "").lower()
    listed = bool(allowed) and (host_matches(host, allowed) or host_matches(netloc, allowed))
    if allowed and not listed:
        return "its host is not in --webhook-allowed-host"
    if parts.scheme != "https" and not listed:
        return "plain http is allowed only to hosts named in --webhook-allowed-host"
    return ""


def deliver(ctx: ReportContext, settings: Settings, log: RunLog, *, out_dir: Path,
            sleep: Callable[[float], None] = time.sleep) -> WebhookOutcome:
    """I/O: each webhook gets what needs attention in its namespaces and was not sent to it before."""
    outcome = WebhookOutcome()
    if not settings.webhook_urls_file and not os.environ.get(URLS_ENV):
        return outcome
    try:
        targets = load_targets(settings)
        context = tls_context(settings.extra_certs)  # a private CA (a SIEM's) as for mail and registries
    except ConfigError as exc:
        log.error(f"no webhook sent: {exc}")
        outcome.failed += 1
        return outcome
    plan = routes(ctx, annotation=settings.webhook_key, global_keys=settings.webhook_global)
    state = _read_state(out_dir)
    secret = read_secret(HMAC_ENV, settings.webhook_hmac_secret_file).encode()
    items = attention(ctx)
    for key, namespaces in plan.items():
        target = targets.get(key)
        if target is None:
            where = "--webhook-global" if namespaces is None else f"namespace {', '.join(namespaces)}"
            log.warn(f"webhook {key!r} ({where}) is not in the webhook Secret; not sent")
            if namespaces is None:
                outcome.failed += 1  # the operator's own setting: an error, as a refused mail server
            continue
        why = refusal(target.url, settings.webhook_allowed_host)
        if why:
            log.error(f"webhook {key} ({target.kind}) not sent: {why}")
            outcome.failed += 1
            continue
        mine = items if namespaces is None else attention(ctx.restrict(namespaces))
        fresh = unsent(mine, set(state.get(key, ())))
        if not fresh:
            outcome.unchanged += 1
            log.info(f"webhook {key} ({target.kind}): nothing new since it was last sent")
            continue
        notice = Notice(key, ctx.cluster, ctx.taken_at, settings.report_url, namespaces, fresh)
        body = json.dumps(RENDER[target.kind](notice), ensure_ascii=False).encode()
        if settings.check:
            path = out_dir / CHECK_DIR / f"{file_name(key)}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, body)
            outcome.files.append(path)
            outcome.sent += 1
            log.info(f"would post to webhook {key} ({target.kind}): wrote {path}")
            continue
        error = post(target, body, deadline=settings.webhook_deadline, secret=secret, sleep=sleep, context=context)
        if error:
            outcome.failed += 1
            log.error(f"webhook {key} ({target.kind}) failed: {error}")
            continue
        outcome.sent += 1
        state[key] = sorted({i.id for i in mine})  # what it knows now; resolved items may come back
        log.info(f"posted {len(fresh)} items to webhook {key} ({target.kind})")
    if not settings.check:
        write_file(out_dir / STATE_FILE, json.dumps(state, sort_keys=True).encode())
    return outcome


def post(target: Target, body: bytes, *, deadline: float, secret: bytes = b"",
         sleep: Callable[[float], None] = time.sleep, context: ssl.SSLContext | None = None) -> str:
    """I/O: POST with retries on 429 (after Retry-After), 5xx and connection errors, within
    `deadline` seconds in all. '' when delivered, else why not, in words that hold no URL."""
    end = time.monotonic() + deadline
    backoff, last = 1.0, ""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return last or f"no answer within {deadline:g}s (--webhook-deadline)"
        wait = backoff
        try:
            _send(target, body, timeout=left, secret=secret, context=context)
            return ""
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {_short(exc)}".replace(target.url, "(the webhook)")
            if exc.code != 429 and exc.code < 500:
                return last  # refused: retrying will not help
            wait = max(backoff, parse_retry_after(exc.headers.get("Retry-After")) or 0.0)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"cannot deliver ({getattr(reason, 'strerror', None) or reason})"
        if time.monotonic() + wait >= end:
            return last + f"; gave up within {deadline:g}s (--webhook-deadline)"
        sleep(wait)
        backoff = min(backoff * 2, 30.0)


def _send(target: Target, body: bytes, *, timeout: float, secret: bytes, context: ssl.SSLContext | None) -> None:
    request = urllib.request.Request(target.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "imvjob"})
    if target.kind == "json" and secret:
        stamp = str(int(time.time()))
        digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        request.add_header("X-Imvjob-Timestamp", stamp)
        request.add_header("X-Imvjob-Signature", f"sha256={digest}")
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        response.read(1 << 16)


def _short(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(200).decode("utf-8", "replace")
    except OSError:
        text = ""
    return " ".join((text or str(exc.reason)).split())[:100]


def _read_state(out_dir: Path) -> dict[str, list[str]]:
    data = read_state_json(out_dir / STATE_FILE)
    return {str(k): [str(i) for i in v] for k, v in data.items() if isinstance(v, list)} if isinstance(data, dict) else {}
