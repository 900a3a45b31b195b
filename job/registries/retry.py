"""When to retry a registry request, and how long to wait first. Pure functions."""
from __future__ import annotations

import email.utils
import random
from datetime import datetime, timezone

#: First backoff step and the largest one, in seconds.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0

#: Answers that mean "the service is down or overloaded": retried, and counted by the breaker.
UNAVAILABLE = frozenset({502, 503, 504})


def is_retryable(status: int, *, definite: frozenset[int] = frozenset()) -> bool:
    """429 and 5xx are retried, except a 5xx the backend knows to be a definite answer
    (Quay's 520 "the scanner failed") and 501/505, which no retry can change."""
    if status in definite:
        return False
    return status == 429 or (500 <= status <= 599 and status not in (501, 505))


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP,
                  rand: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2**attempt.

    The jitter keeps many workers that failed together from retrying together; the floor
    keeps a retry from coming back at once.
    """
    step = min(cap, base * (2 ** max(attempt, 0)))
    r = (rand or random).random()
    return step / 2 + r * step / 2


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date); None if absent
    or unreadable. A date in the past means 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
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
