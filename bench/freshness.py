"""Read-your-writes measured directly: what a worker's ``WebhookView.refresh`` costs, against the
stage's Redis, beside the ceiling of one round trip (PING) timed the same way in the same run.

A reader calls ``refresh`` after every stream read that returned entries: with the table
unchanged it is one GET, so its cost per event is that round trip divided by the entries a read
returns (up to 100 under load, often 1 when events trickle in). The reload after a change is
``bench/view_refresh.py``'s measurement.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.results import Row
from bench.stage import Stage
from bench.stats import Figure
from bench.subscriptions import specs
from relay.keys import Keys
from relay.store.webhooks import WebhookStore
from relay.webhooks.view import WebhookView

SECTION = "read-your-writes (WebhookView.refresh)"
PREFIX = "benchfresh"
CALLS = 2_000


async def _timed(fn: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """Wall and CPU microseconds per call of ``calls`` sequential calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6


async def run_freshness(stage: Stage, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    store = WebhookStore(stage.redis, Keys(PREFIX, 1))
    now_ms = int(time.time() * 1000)
    await store.create(specs("http://127.0.0.1:9", 1, 0)[0], now_ms)
    view = WebhookView(store)
    await view.refresh()
    ping: dict[str, list[float]] = {"wall": [], "cpu": []}
    fresh: dict[str, list[float]] = {"wall": [], "cpu": []}
    for _ in range(rounds):  # interleaved, so both see the same machine
        for into, fn in ((ping, stage.redis.ping), (fresh, view.refresh)):
            wall, cpu = await _timed(fn, CALLS)
            into["wall"].append(wall)
            into["cpu"].append(cpu)
    ratio = Figure.of([f / p for f, p in zip(fresh["wall"], ping["wall"], strict=True)])
    rows = [
        Row(SECTION, "PING round trip (the ceiling)", "us", Figure.of(ping["wall"])),
        Row(SECTION, "refresh, table unchanged (one GET)", "us", Figure.of(fresh["wall"])),
        Row(SECTION, "refresh / PING", "x", ratio),
        Row(SECTION, "PING, client CPU", "us", Figure.of(ping["cpu"])),
        Row(SECTION, "refresh, table unchanged, client CPU", "us", Figure.of(fresh["cpu"])),
    ]
    async for key in stage.redis.scan_iter(f"{PREFIX}:*"):
        await stage.redis.delete(key)
    return rows, {"ping_us": ping, "refresh_us": fresh, "calls_per_run": CALLS}
