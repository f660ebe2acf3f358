"""What one attempt's result means, and what happens next. Pure: time and randomness injected.

- ``classify``: 2xx delivered; timeouts, connection errors, 408, 429 and 5xx retried; 410 gone
  (the webhook is switched off); any other status, 3xx included, rejected at once.
- ``next_step``: after a retriable failure, the attempt's delay from the schedule with jitter, or
  the ``Retry-After`` the callback asked for (capped at the schedule's largest delay); after the
  schedule's last delay, a dead letter.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

JITTER = 0.2
"""Each scheduled delay is moved by up to this fraction either way, so retries do not march in step."""

DEFER_SECONDS = 0.25
"""A delivery put off without an attempt (its callback host is busy) comes back after at least
about this long, or about as long as it would have waited, up to ``DEFER_MAX``."""
DEFER_MAX = 60.0


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"
    REJECTED = "rejected"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST came to: a status, or an error (``refused``: the egress policy said no)."""

    status: int | None
    seconds: float
    error: str | None = None
    retry_after: str | None = None
    refused: bool = False
    answer: bytes = b""
    """The first bytes of the answer's body."""


def classify(result: AttemptResult) -> Verdict:
    if result.refused:
        return Verdict.REFUSED
    status = result.status
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (408, 429) or status >= 500:
        return Verdict.RETRY
    if status == 410:
        return Verdict.GONE
    return Verdict.REJECTED


def status_class(result: AttemptResult) -> str:
    """``2xx``..``5xx``, or ``error`` when no response came (the metrics' label)."""
    return "error" if result.status is None else f"{result.status // 100}xx"


def describe(result: AttemptResult) -> str:
    """A few words on the result, for dead letters and the attempt log."""
    if result.status is None:
        return result.error or "no response"
    if 300 <= result.status < 400:
        return f"HTTP {result.status} (redirects are not followed)"
    return f"HTTP {result.status}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def jittered(delay: float, rand: Callable[[], float]) -> float:
    """``delay`` moved by up to ``JITTER`` of itself; ``rand()`` is uniform in [0, 1)."""
    return delay * (1.0 - JITTER + 2.0 * JITTER * rand())


@dataclass(frozen=True, slots=True)
class Retry:
    attempt: int
    """The number of the next attempt."""
    due: float
    """Unix seconds."""


@dataclass(frozen=True, slots=True)
class Dead:
    reason: str


def next_step(
    attempt: int,
    schedule: tuple[float, ...],
    result: AttemptResult,
    now: float,
    rand: Callable[[], float],
) -> Retry | Dead:
    """After attempt number ``attempt`` (1-based) failed retriably: retry when, or give up."""
    if attempt > len(schedule):
        return Dead(f"gave up after {attempt} attempts, last: {describe(result)}")
    asked = parse_retry_after(result.retry_after, now)
    delay = jittered(schedule[attempt - 1], rand) if asked is None else min(asked, max(schedule))
    return Retry(attempt + 1, now + delay)


def deferred(now: float, rand: Callable[[], float], wait: float = 0.0) -> float:
    """When a delivery put off without an attempt comes back (unix seconds); ``wait``: how long
    it would have waited for its host."""
    return now + jittered(min(DEFER_MAX, max(DEFER_SECONDS, wait)), rand)
