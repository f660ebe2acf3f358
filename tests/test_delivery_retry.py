"""A retry, pure: when the next attempt is due, when to give up, how it waits in the scheduled set."""

from __future__ import annotations

import orjson
import pytest

from relay.clock import Clock
from relay.delivery.message import Delivery
from relay.delivery.policy import AttemptResult
from relay.delivery.retry import (
    DueTimes,
    GiveUp,
    Retry,
    after_failure,
    parse_retry_after,
    paused_too_long,
    put_off,
)
from tests.test_delivery_message import an_event

SCHEDULE = (5.0, 300.0, 1800.0)
NOW = 1_700_000_000.0
EVENT = an_event()


def at(now: float, rand: float = 0.5) -> Clock:
    return Clock(now=lambda: now, rand=lambda: rand)


def attempt(n: int) -> Delivery:
    return Delivery(7, n, EVENT, first_ms=int(NOW * 1000))


def test_a_retry_keeps_the_time_of_the_first_attempt() -> None:
    """After attempt 1 fails, its retry carries when that first attempt was (unix ms), and keeps it."""
    step = after_failure(Delivery(7, 1, EVENT), status(503), SCHEDULE, at(NOW, 0.5))
    assert isinstance(step, Retry) and step.delivery.first_ms == int(NOW * 1000)
    later = after_failure(step.delivery, status(503), SCHEDULE, at(NOW + 60, 0.5))
    assert isinstance(later, Retry) and later.delivery.first_ms == int(NOW * 1000)


def test_a_pause_ends_with_the_schedule_span() -> None:
    """A delivery held by an open breaker is given up once the schedule's whole span has passed
    since its first attempt; never before, and never without a first attempt known."""
    span_ms = int(sum(SCHEDULE) * 1000)
    first = int(NOW * 1000)
    assert not paused_too_long(attempt(3), SCHEDULE, first + span_ms - 1)
    assert paused_too_long(attempt(3), SCHEDULE, first + span_ms)
    assert not paused_too_long(Delivery(7, 1, EVENT), SCHEDULE, first + 10 * span_ms)


def status(code: int, retry_after: str | None = None) -> AttemptResult:
    return AttemptResult(status=code, seconds=0.01, retry_after=retry_after)


ERROR = AttemptResult(status=None, seconds=1.0, error="timed out after 10s")


@pytest.mark.parametrize(("rand", "low", "high"), [(0.0, 4.0, 4.0), (0.5, 5.0, 5.0), (0.999999, 5.99, 6.0)])
def test_delay_follows_the_schedule_with_jitter(rand: float, low: float, high: float) -> None:
    """Attempt 1's retry waits the first delay, moved by at most 20 % either way."""
    step = after_failure(attempt(1), status(503), SCHEDULE, at(NOW, rand))
    assert isinstance(step, Retry) and step.delivery == attempt(2)
    assert low <= step.due - NOW <= high


def test_each_attempt_takes_its_own_delay() -> None:
    """Attempt n's retry waits the n-th delay."""
    step = after_failure(attempt(3), status(503), SCHEDULE, at(NOW))
    assert step == Retry(attempt(4), NOW + 1800.0)


def test_after_the_last_delay_it_is_dead() -> None:
    """Past the schedule the delivery is given up, the reason naming attempts and last result."""
    step = after_failure(attempt(4), status(503), SCHEDULE, at(NOW))
    assert step == GiveUp("gave up after 4 attempts, last: HTTP 503")


def test_empty_schedule_gives_up_at_once() -> None:
    """No delays configured: the first retriable failure is final."""
    assert isinstance(after_failure(attempt(1), ERROR, (), at(NOW)), GiveUp)


def test_retry_after_seconds_replaces_the_delay() -> None:
    """Retry-After: 120 waits 120 s exactly, no jitter."""
    assert after_failure(attempt(1), status(429, "120"), SCHEDULE, at(NOW, 0.0)) == Retry(
        attempt(2), NOW + 120
    )


def test_retry_after_is_capped_at_the_largest_delay() -> None:
    """A Retry-After beyond the schedule's largest delay waits that largest delay."""
    retry = after_failure(attempt(1), status(503, "86400"), SCHEDULE, at(NOW, 0.0))
    assert retry == Retry(attempt(2), NOW + 1800.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),  # NOW itself
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),
        ("Tue, 14 Nov 2023 22:12:20 GMT", 0.0),  # in the past: at once
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    """Delta seconds and HTTP dates are understood; anything else is ignored."""
    assert parse_retry_after(header, NOW) == seconds


def test_garbage_retry_after_falls_back_to_the_schedule() -> None:
    """An unreadable Retry-After leaves the scheduled delay in place."""
    assert after_failure(attempt(1), status(503, "soon"), SCHEDULE, at(NOW)) == Retry(attempt(2), NOW + 5.0)


def test_deferral_lasts_about_the_wait_it_avoids() -> None:
    """A delivery put off comes back after about as long as it would have waited: 0.25 s to 60 s."""
    assert put_off(attempt(2), at(NOW, 0.0)) == Retry(attempt(2), NOW + 0.2)
    assert put_off(attempt(2), at(NOW, 1.0)).due == pytest.approx(NOW + 0.3)
    assert put_off(attempt(2), at(NOW), wait=10.0) == Retry(attempt(2), NOW + 10.0)
    assert put_off(attempt(2), at(NOW), wait=3600.0) == Retry(attempt(2), NOW + 60.0)


def test_member_is_a_flat_list_of_the_fields() -> None:
    """The sorted-set member is ["webhook", "42", "attempt", "2", ...]: the script XADDs it as is."""
    flat = orjson.loads(Retry(Delivery(42, 2, EVENT), NOW).member())
    assert flat[:4] == ["webhook", "42", "attempt", "2"]
    assert dict(zip(flat[::2], flat[1::2], strict=True))["json"].encode() == EVENT.json


def test_due_times_keep_the_earliest_per_partition_until_taken() -> None:
    """A reader learns the earliest retry written to its partition once, and only its own."""
    due = DueTimes()
    due.written(1, (Retry(attempt(2), NOW + 5), Retry(attempt(2), NOW + 3)))
    due.written(1, (Retry(attempt(2), NOW + 4),))
    due.written(2, ())
    assert (due.take(2), due.take(1), due.take(1)) == (None, int((NOW + 3) * 1000), None)
