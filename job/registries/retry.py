"""When to retry a registry request, and how long to wait first. Pure functions."""
from __future__ import annotations

import random

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
