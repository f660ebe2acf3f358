"""A retry: one delivery to try again later. This module is its one home: when it is due, how it
is written down, and where it waits.

- ``after_failure``: after a retriable failure, the next attempt, due after the schedule's delay
  for this attempt with jitter, or after the ``Retry-After`` the callback asked for (capped at the
  schedule's largest delay). After the schedule's last delay: ``GiveUp`` (a dead letter).
- ``put_off``: a delivery put off without an attempt (its host is busy, another delivery holds a
  single-use lease) comes back with the same attempt number, after about as long as it would
  have waited.
- Where it waits: in its partition's scheduled set (``Keys.scheduled``), scored by its due time
  (unix ms), its member the delivery's stream fields as a JSON array of names and values
  (``Retry.member``). It is added by the script that acknowledges the entry it came from
  (``COMPLETE``, sent by ``relay.delivery.acks.Completer``), so a crash neither loses nor doubles
  it. When it is due, the reader's ``TAKE`` script moves it onto the partition's deliveries
  stream, turning the member back into fields without parsing anything else, and it is read
  there like any delivery.
- ``DueTimes``: the earliest retry this process wrote to each partition, so that the partition's
  reader looks at the scheduled set then, not only on its regular round.

Pure but for ``DueTimes``: time and randomness come in as a ``Clock``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

import orjson

from relay.clock import Clock
from relay.delivery.message import Delivery
from relay.delivery.policy import AttemptResult, describe

JITTER = 0.2
"""Each scheduled delay is moved by up to this fraction either way, so retries do not march in step."""

DEFER_SECONDS = 0.25
"""A delivery put off without an attempt (its callback host is busy) comes back after at least
about this long, or about as long as it would have waited, up to ``DEFER_MAX``."""
DEFER_MAX = 60.0


@dataclass(frozen=True, slots=True)
class Retry:
    delivery: Delivery
    """The attempt to make: the next one after a failure, the same one when put off."""
    due: float
    """Unix seconds."""

    @property
    def due_ms(self) -> int:
        """The score in the scheduled set."""
        return int(self.due * 1000)

    def member(self) -> bytes:
        """The member in the scheduled set: ``["webhook", "7", "attempt", "2", "m", "[...]",
        "json", "{...}"]``, which ``TAKE`` turns back into the fields of a deliveries-stream entry."""
        flat: list[str] = []
        for name, value in self.delivery.to_fields().items():
            flat.append(name)
            flat.append(value.decode() if isinstance(value, bytes) else str(value))
        return orjson.dumps(flat)


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


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


def jittered(delay: float, clock: Clock) -> float:
    """``delay`` moved by up to ``JITTER`` of itself."""
    return delay * (1.0 - JITTER + 2.0 * JITTER * clock.rand())


def after_failure(
    delivery: Delivery, result: AttemptResult, schedule: tuple[float, ...], clock: Clock
) -> Retry | GiveUp:
    """After ``delivery``'s attempt failed retriably: the next attempt and when, or give up."""
    attempt = delivery.attempt
    if attempt > len(schedule):
        return GiveUp(f"gave up after {attempt} attempts, last: {describe(result)}")
    now = clock.now()
    asked = parse_retry_after(result.retry_after, now)
    delay = jittered(schedule[attempt - 1], clock) if asked is None else min(asked, max(schedule))
    return Retry(delivery.again(attempt + 1, int(now * 1000)), now + delay)


def paused_too_long(delivery: Delivery, schedule: tuple[float, ...], now_ms: int) -> bool:
    """A delivery held back by its webhook's breaker has waited the schedule's whole span since its
    first attempt: it is given up (``exhausted``). Pure."""
    return bool(delivery.first_ms) and now_ms - delivery.first_ms >= sum(schedule) * 1000


def paused(delivery: Delivery, clock: Clock, wait: float) -> Retry:
    """``delivery`` held back by its open breaker for ``wait`` seconds; its pause start noted as
    its first attempt if it had none."""
    return put_off(delivery.again(delivery.attempt, clock.now_ms()), clock, wait)


def put_off(delivery: Delivery, clock: Clock, wait: float = 0.0) -> Retry:
    """``delivery`` put off without an attempt; ``wait``: how long it would have waited for its host."""
    return Retry(delivery, clock.now() + jittered(min(DEFER_MAX, max(DEFER_SECONDS, wait)), clock))


class DueTimes:
    """Per partition, the earliest retry this process wrote there (unix ms), until its reader
    takes it."""

    def __init__(self) -> None:
        self._earliest: dict[int, int] = {}

    def written(self, partition: int, retries: tuple[Retry, ...]) -> None:
        if retries:
            due = min(retry.due_ms for retry in retries)
            self._earliest[partition] = min(due, self._earliest.get(partition, due))

    def take(self, partition: int) -> int | None:
        return self._earliest.pop(partition, None)
