"""relay.console.rates: callbacks/s from a growing total, deliveries/s from attempt stamps. Pure."""

from __future__ import annotations

import pytest

from relay.console.rates import RateSampler, attempt_rate


def test_first_sample_gives_no_rate() -> None:
    """One sample alone says nothing about a rate."""
    sampler = RateSampler()
    assert sampler.add(10.0, 100) is None
    assert sampler.needs_second_sample(10.5)
    assert not sampler.needs_second_sample(11.0)


def test_rate_against_the_oldest_sample() -> None:
    """The rate is the growth since the oldest sample of the horizon, per second."""
    sampler = RateSampler(horizon=60.0)
    sampler.add(0.0, 0)
    sampler.add(5.0, 50)
    assert sampler.add(10.0, 200) == pytest.approx(20.0)


def test_samples_past_the_horizon_are_dropped() -> None:
    """A sample older than the horizon no longer counts."""
    sampler = RateSampler(horizon=60.0)
    sampler.add(0.0, 0)
    sampler.add(50.0, 1000)
    assert sampler.add(70.0, 1200) == pytest.approx(10.0)


def test_a_shrinking_total_starts_over() -> None:
    """Redis emptied: no negative rate, the next view starts afresh."""
    sampler = RateSampler()
    sampler.add(0.0, 1000)
    assert sampler.add(5.0, 10) is None


@pytest.mark.parametrize(
    ("stamps", "kept", "rate"),
    [
        ([], 50, 0.0),
        ([9_500, 9_000, -1_000], 50, 0.2),  # two in the 10 s window
        ([-1], 50, 0.0),  # outside the window
        ([10_000 - 100 * n for n in range(10)], 10, 10.0),  # full log inside the window: its span
        ([10_000 - 100 * n for n in range(10)], 50, 1.0),  # not full: over the window
    ],
)
def test_attempt_rate(stamps: list[int], kept: int, rate: float) -> None:
    """Attempts per second over the window, or over a full log's span when it fits inside."""
    assert attempt_rate(stamps, now_ms=10_000, window_ms=10_000, kept=kept) == pytest.approx(rate)
