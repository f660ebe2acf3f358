"""The retry policy, pure: what a result means, when the next attempt is, when to give up."""

from __future__ import annotations

import pytest

from relay.delivery.hosts import host_of
from relay.delivery.policy import (
    AttemptResult,
    Dead,
    Retry,
    Verdict,
    classify,
    deferred,
    describe,
    next_step,
    parse_retry_after,
)
from relay.delivery.worker import backoff

SCHEDULE = (5.0, 300.0, 1800.0)
NOW = 1_700_000_000.0


def status(code: int, retry_after: str | None = None) -> AttemptResult:
    return AttemptResult(code, 0.01, retry_after=retry_after)


ERROR = AttemptResult(None, 1.0, error="timed out after 10s")


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (status(200), Verdict.DELIVERED),
        (status(204), Verdict.DELIVERED),
        (status(299), Verdict.DELIVERED),
        (ERROR, Verdict.RETRY),
        (status(408), Verdict.RETRY),
        (status(429), Verdict.RETRY),
        (status(500), Verdict.RETRY),
        (status(503), Verdict.RETRY),
        (status(410), Verdict.GONE),
        (status(400), Verdict.REJECTED),
        (status(401), Verdict.REJECTED),
        (status(404), Verdict.REJECTED),
        (status(301), Verdict.REJECTED),
        (status(302), Verdict.REJECTED),
        (AttemptResult(None, 0.0, error="egress refused: x", refused=True), Verdict.REFUSED),
    ],
)
def test_classification(result: AttemptResult, verdict: Verdict) -> None:
    """2xx delivered; errors, 408, 429, 5xx retried; 410 gone; other 4xx and 3xx rejected."""
    assert classify(result) == verdict


@pytest.mark.parametrize(("rand", "low", "high"), [(0.0, 4.0, 4.0), (0.5, 5.0, 5.0), (0.999999, 5.99, 6.0)])
def test_delay_follows_the_schedule_with_jitter(rand: float, low: float, high: float) -> None:
    """Attempt 1's retry waits the first delay, moved by at most 20 % either way."""
    step = next_step(1, SCHEDULE, status(503), NOW, lambda: rand)
    assert isinstance(step, Retry) and step.attempt == 2
    assert low <= step.due - NOW <= high


def test_each_attempt_takes_its_own_delay() -> None:
    """Attempt n's retry waits the n-th delay."""
    step = next_step(3, SCHEDULE, status(503), NOW, lambda: 0.5)
    assert step == Retry(4, NOW + 1800.0)


def test_after_the_last_delay_it_is_dead() -> None:
    """Past the schedule the delivery is given up, the reason naming attempts and last result."""
    step = next_step(4, SCHEDULE, status(503), NOW, lambda: 0.5)
    assert step == Dead("gave up after 4 attempts, last: HTTP 503")


def test_empty_schedule_gives_up_at_once() -> None:
    """No delays configured: the first retriable failure is final."""
    assert isinstance(next_step(1, (), ERROR, NOW, lambda: 0.5), Dead)


def test_retry_after_seconds_replaces_the_delay() -> None:
    """Retry-After: 120 waits 120 s exactly, no jitter."""
    assert next_step(1, SCHEDULE, status(429, "120"), NOW, lambda: 0.0) == Retry(2, NOW + 120)


def test_retry_after_is_capped_at_the_largest_delay() -> None:
    """A Retry-After beyond the schedule's largest delay waits that largest delay."""
    assert next_step(1, SCHEDULE, status(503, "86400"), NOW, lambda: 0.0) == Retry(2, NOW + 1800.0)


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
    assert next_step(1, SCHEDULE, status(503, "soon"), NOW, lambda: 0.5) == Retry(2, NOW + 5.0)


def test_redirect_is_described_as_not_followed() -> None:
    """A 3xx in a dead letter says why it failed."""
    assert describe(status(301)) == "HTTP 301 (redirects are not followed)"


def test_deferral_lasts_about_the_wait_it_avoids() -> None:
    """A delivery put off comes back after about as long as it would have waited: 0.25 s to 60 s."""
    assert deferred(NOW, lambda: 0.0) == NOW + 0.2
    assert deferred(NOW, lambda: 1.0) == pytest.approx(NOW + 0.3)
    assert deferred(NOW, lambda: 0.5, wait=10.0) == NOW + 10.0
    assert deferred(NOW, lambda: 0.5, wait=3600.0) == NOW + 60.0


def test_reader_backoff_doubles_and_is_capped() -> None:
    """Redis errors back off 0.1, 0.2, 0.4 ... up to 2 s (before jitter halving at most)."""
    assert [backoff(n, lambda: 1.0) for n in (1, 2, 3, 6, 50)] == [0.1, 0.2, 0.4, 2.0, 2.0]
    assert backoff(50, lambda: 0.0) == 1.0


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://Example.com/a", "example.com:80"),
        ("https://example.com/a", "example.com:443"),
        ("http://example.com:8080/a", "example.com:8080"),
        ("http://[::1]:9/a", "::1:9"),
    ],
)
def test_host_of(url: str, host: str) -> None:
    """Per-host limits count by lowercased host and port."""
    assert host_of(url) == host
