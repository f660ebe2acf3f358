"""Memory: a worker's RSS with a small backlog and with a large one (1,000,000 events waiting),
each waiting in Redis before a fresh worker starts and delivers for the same time; and the peak
RSS of every process the other benchmarks ran. A worker reads a bounded batch at a time, so its
memory must not follow the backlog; Redis's does (reported per waiting event, for sizing)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.consumers import WORKER_SETTINGS, sink_stats, sink_url
from bench.delivery import _first_id
from bench.preload import preload
from bench.procs import sample_rss
from bench.results import Row, below
from bench.stage import PARTITIONS, Stage
from bench.stats import Figure
from bench.subscriptions import subscribe
from relay.keys import Keys

SECTION = "memory"
MIB = 1024


async def _used_memory(stage: Stage) -> int:
    info = await stage.redis.info("memory")
    return int(info["used_memory"])


async def with_backlog(stage: Stage, events: int, seconds: float, prefix: str) -> dict[str, float]:
    """``events`` waiting in Redis, then a fresh worker for ``seconds``: its RSS, Redis's size."""
    sink = await stage.sink()
    keys = Keys(prefix, PARTITIONS)
    before = await _used_memory(stage)
    await subscribe(stage.redis, keys, sink_url(sink), 1, 0, int(time.time() * 1000))
    await preload(stage.redis, keys, events, _first_id(), int(time.time() * 1000), chunk=10_000)
    waiting = await _used_memory(stage) - before
    worker = await stage.relay("work", name=f"memory-{events}", key_prefix=prefix, **WORKER_SETTINGS)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss([worker], stop))
    await asyncio.sleep(seconds)
    stop.set()
    await sampler
    delivered = int((await sink_stats(sink))["count"])
    result = {
        "events_waiting": events,
        "max_rss_mib": max(worker.samples_kib, default=0) / MIB,
        "peak_rss_mib": worker.peak_rss_kib() / MIB,
        "delivered_in_window": delivered,
        "redis_bytes_per_event": waiting / events if events else 0.0,
    }
    await stage.stop(worker)
    await stage.stop(sink)
    for key in keys.all_events():
        await stage.redis.unlink(key)
    return result


async def run_memory(
    stage: Stage, small: int, large: int, seconds: float
) -> tuple[list[Row], dict[str, Any]]:
    low = await with_backlog(stage, small, seconds, "benchmem0")
    high = await with_backlog(stage, large, seconds, "benchmem1")
    growth = Figure.of([high["max_rss_mib"] / low["max_rss_mib"]]) if low["max_rss_mib"] else Figure.of([])
    rows = [
        Row(SECTION, f"relay work RSS, {small:,} events waiting", "MiB", Figure.of([low["max_rss_mib"]])),
        Row(SECTION, f"relay work RSS, {large:,} events waiting", "MiB", Figure.of([high["max_rss_mib"]])),
        Row(
            SECTION,
            f"relay work RSS, {large:,} / {small:,} waiting",
            "x",
            growth,
            "< 1.1 (flat)",
            below(growth, 1.1),
        ),
        Row(SECTION, "redis memory per waiting event", "bytes", Figure.of([high["redis_bytes_per_event"]])),
    ]
    return rows, {"small": low, "large": high, "seconds": seconds}


def peak_rows(sections: dict[str, Any]) -> list[Row]:
    """Peak RSS of every process the other benchmarks reported, in MiB."""
    rows = []
    for data in sections.values():
        for name, kib in (data.get("peak_rss_kib") or {}).items() if isinstance(data, dict) else ():
            rows.append(Row(SECTION, f"peak RSS, {name}", "MiB", Figure.of([kib / MIB])))
    return rows
