"""The scale-out benchmark's figures (bench/scale_out.py): N capped processes against one, or,
where no cgroup can cap them, items per CPU-second at N against 1. Pure: made-up runs."""

from __future__ import annotations

import math

from bench.scale_out import scaling_rows


def run(rate: float, cpu_us: float, throttled: float = 0.9) -> dict[str, float]:
    return {
        "rate": rate,
        "cpu_us": cpu_us,
        "redis_cpu_us": 20.0,
        "throttled_share": throttled,
        "deferred": 0.0,
    }


def test_capped_processes_are_held_to_0_9_n_the_rate_of_one() -> None:
    """Capped: each N's rate over one's, run by run, against 0.9 x N; CPU per process as % of a core."""
    runs = {1: [run(1000, 100)], 2: [run(1900, 105)], 4: [run(3000, 120)]}
    rows = {row.name: row for row in scaling_rows("s", "workers", "event", "events/s", runs, True)}
    assert rows["2 workers / 1"].figure.median == 1.9
    assert rows["2 workers / 1"].target == ">= 1.8" and rows["2 workers / 1"].met is True
    assert rows["4 workers / 1"].target == ">= 3.6" and rows["4 workers / 1"].met is False
    assert rows["CPU of each worker, 1 worker"].figure.median == 10.0  # 100 us x 1000/s
    assert rows["periods throttled, 2 workers"].figure.median == 90.0
    assert rows["redis CPU, 4 workers"].figure.median == 6.0  # 20 us x 3000/s
    assert "1 worker / 1" not in rows


def test_uncapped_processes_compare_items_per_cpu_second() -> None:
    """No cgroup: the figure is CPU per item at 1 over at N (items per CPU-second, N vs 1),
    against 0.9; no throttling rows, since nothing was capped."""
    runs = {1: [run(1000, 100, math.nan)], 2: [run(1200, 125, math.nan)]}
    rows = {row.name: row for row in scaling_rows("s", "listeners", "callback", "req/s", runs, False)}
    efficiency = rows["2 listeners / 1, callbacks per CPU-second"]
    assert efficiency.figure.median == 0.8 and efficiency.target == ">= 0.9" and efficiency.met is False
    assert "2 listeners / 1" not in rows
    assert not any(name.startswith("periods throttled") for name in rows)
