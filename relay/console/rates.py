"""Rates for the console's overview. Pure: times are passed in.

- Callbacks per second: from a total that only grows (events appended to the streams, as Redis
  counts them), sampled by each view of the page; ``RateSampler`` keeps a minute of samples.
- Deliveries per second: from the attempt logs' own timestamps, so no counter is written on the
  delivery path. A log holds only the newest ``kept`` attempts: when all of them fall inside the
  window, the rate is taken over the span they cover instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class RateSampler:
    """Samples of a growing total; the rate is taken against the oldest sample of the horizon
    that is at least ``min_gap`` seconds old. A total that shrinks (Redis emptied) starts over."""

    def __init__(self, *, horizon: float = 60.0, min_gap: float = 1.0) -> None:
        self.horizon = horizon
        self.min_gap = min_gap
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> float | None:
        """Record ``total`` at ``now`` (seconds, monotonic); the rate per second, or None when no
        sample is old enough yet."""
        if self.samples and total < self.samples[-1][1]:
            self.samples.clear()
        while self.samples and now - self.samples[0][0] > self.horizon:
            self.samples.popleft()
        rate = None
        if self.samples and now - self.samples[0][0] >= self.min_gap:
            then, before = self.samples[0]
            rate = (total - before) / (now - then)
        self.samples.append((now, total))
        return rate

    def needs_second_sample(self, now: float) -> bool:
        """True when a rate cannot be given at ``now`` without waiting ``min_gap``."""
        return not any(self.min_gap <= now - t <= self.horizon for t, _ in self.samples)


def attempt_rate(stamps: Iterable[int], *, now_ms: int, window_ms: int, kept: int) -> float:
    """Attempts per second over the last ``window_ms``, from one log's ``at`` stamps (unix ms,
    newest first); ``kept`` is how many the log holds at most."""
    stamps = list(stamps)
    recent = [at for at in stamps if at >= now_ms - window_ms]
    if stamps and len(recent) == len(stamps) >= kept:
        span = max(now_ms - stamps[-1], 1)
        return (len(stamps) - 1) * 1000 / span
    return len(recent) * 1000 / window_ms
