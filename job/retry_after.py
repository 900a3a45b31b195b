"""Retry-After (RFC 9110): how long a server asks to be left alone. Pure; every client of the job
(registries, the API server, chat webhooks) reads the header through it."""
from __future__ import annotations

import email.utils
import math
from datetime import datetime, timezone


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date); None if absent
    or unreadable. A date in the past means 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # only ASCII digits are delta-seconds: int() reads others too
        # Thousands of digits are more than int() reads, and a wait past every budget.
        return float(int(value)) if len(value) <= 18 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
