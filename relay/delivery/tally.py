"""Delivery metrics noted per attempt and added to the Prometheus metrics in bulk.

An attempt only counts into a local tally (a dict increment and a list append); the completer
adds the tally to ``relay_deliveries_total`` and ``relay_delivery_seconds`` after each batch it
sends, so the metrics' locks are taken once per batch and label, not once per delivery.
"""

from __future__ import annotations

from collections import defaultdict

from relay import metrics


class Tally:
    def __init__(self) -> None:
        self._counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._seconds: list[float] = []

    def attempt(self, outcome: str, status_class: str, seconds: float | None) -> None:
        """One attempt; ``seconds`` None when no response came (not a latency)."""
        self._counts[outcome, status_class] += 1
        if seconds is not None:
            self._seconds.append(seconds)

    def flush(self) -> None:
        counts, self._counts = self._counts, defaultdict(int)
        seconds, self._seconds = self._seconds, []
        for (outcome, status_class), n in counts.items():
            metrics.DELIVERIES.labels(outcome, status_class).inc(n)
        observe = metrics.DELIVERY_SECONDS.observe
        for value in seconds:
            observe(value)
