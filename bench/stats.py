"""Numbers from runs: percentiles, the median of several runs with its spread, ratios. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True)
class Figure:
    """One figure: the median of several runs, with the lowest and highest run."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, runs: Sequence[float]) -> Figure:
        kept = tuple(float(r) for r in runs if not math.isnan(r))
        if not kept:
            return cls(math.nan, math.nan, math.nan, ())
        return cls(statistics.median(kept), min(kept), max(kept), kept)

    def to_json(self) -> dict[str, object]:
        return {
            "median": _round(self.median),
            "min": _round(self.low),
            "max": _round(self.high),
            "runs": [_round(r) for r in self.runs],
        }


def _round(value: float) -> float | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Run-by-run ratios of paired runs (run i of one against run i of the other)."""
    return [n / d if d else math.nan for n, d in zip(numerators, denominators, strict=True)]


def slope(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` over ``times`` (units of value per unit of time)."""
    if len(times) < 2:
        return 0.0
    mean_t = statistics.fmean(times)
    mean_v = statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread


def backlog_is_flat(times: Sequence[float], backlog: Sequence[float], offered_rate: float) -> bool:
    """A backlog is flat when it grows by less than 2% of the offered rate, and never holds more
    than one second of traffic: the consumers keep up."""
    if not backlog:
        return True
    return slope(times, backlog) < 0.02 * offered_rate and max(backlog) <= max(offered_rate, 1.0)


def cpu_us_per_item(cpu_seconds: float, items: int) -> float:
    return cpu_seconds * 1e6 / items if items else math.nan
