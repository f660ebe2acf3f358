"""Consumers of a preloaded stream: ``relay work`` processes or the minimal loop, and one run of one.

Each consumer has a key prefix of its own, so all of them stay up between runs (idle, blocked
in XREADGROUP) and take turns: a run preloads that consumer's streams and times the sink.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bench.preload import preload
from bench.procs import Proc
from bench.stage import PARTITIONS, Stage
from bench.stats import cpu_us_per_item
from bench.subscriptions import subscribe
from relay.keys import GROUP, Keys

WORKER_SETTINGS = {"max_in_flight": "64", "max_per_host": "64"}
"""64 deliveries in flight, all to the one sink, as the minimal loop keeps: like for like. (The
defaults, 256 in flight and 32 per host, no longer defer a busy host's deliveries through Redis
while the process has room; `relay_deliveries_deferred_total` stays at 0 in this benchmark.)"""


@dataclass
class Consumer:
    label: str
    keys: Keys
    procs: list[Proc]
    fan_out: int
    """Deliveries per event."""


def sink_url(sink: Proc) -> str:
    return f"http://127.0.0.1:{sink.port}"


async def relay_workers(
    stage: Stage,
    label: str,
    prefix: str,
    sink: Proc,
    processes: int = 1,
    matching: int = 1,
    others: int = 0,
    *,
    every_feature: bool = False,
    settings: dict[str, str] | None = None,
) -> Consumer:
    """``processes`` workers delivering to ``matching`` webhooks on the sink (``every_feature``:
    each with a filter and a rate limit, see ``subscribe``); ``settings``: their ``RELAY_*``
    settings, ``WORKER_SETTINGS`` when not given."""
    keys = Keys(prefix, PARTITIONS)
    now_ms = int(time.time() * 1000)
    await subscribe(stage.redis, keys, sink_url(sink), matching, others, now_ms, every_feature=every_feature)
    chosen = WORKER_SETTINGS if settings is None else settings
    procs = [
        await stage.relay("work", name=f"{label}-{n}", key_prefix=prefix, **chosen) for n in range(processes)
    ]
    return Consumer(label, keys, procs, matching)


async def minimal_loop(
    stage: Stage, sink: Proc, prefix: str = "benchmin", client: str = "aiohttp", label: str = "minimal loop"
) -> Consumer:
    """``bench.minimal_loop`` posting through ``client`` (``aiohttp`` or ``relay``)."""
    args = ["--redis-url", stage.redis_url, "--prefix", prefix, "--partitions", str(PARTITIONS),
            "--sink", f"{sink_url(sink)}/minimal", "--client", client]  # fmt: skip
    proc = await stage.python(f"minimal-loop-{client}", "bench.minimal_loop", *args)
    deadline = time.monotonic() + 20
    while "ready" not in proc.tail(5):
        if not proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the minimal loop did not start:\n{proc.tail()}")
        await asyncio.sleep(0.05)
    return Consumer(label, Keys(prefix, PARTITIONS), [proc], 1)


async def sink_stats(sink: Proc, path: str = "/stats", method: str = "GET") -> Any:
    async with aiohttp.ClientSession() as session, session.request(method, f"{sink_url(sink)}{path}") as resp:
        return orjson.loads(await resp.read()) if method == "GET" else None


async def backlog(stage: Stage, keys: Keys) -> int:
    """Entries of the events streams not yet acknowledged: unread (lag) plus pending."""
    total = 0
    for stream in keys.all_events():
        for group in await stage.redis.xinfo_groups(stream):
            if group["name"] in (GROUP, GROUP.encode()):
                total += int(group.get("lag") or 0) + int(group["pending"])
    return total


async def wait_for(check: Any, what: str, within: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:.0f}s")
        await asyncio.sleep(every)


async def deliver_run(
    stage: Stage, sink: Proc, consumer: Consumer, events: int, first_id: int
) -> dict[str, float]:
    """Preload ``events``; time the sink from the first delivery to the last; CPU of everyone."""
    await sink_stats(sink, "/reset", "POST")
    expected = events * consumer.fan_out
    cpu_before = sum(p.cpu_seconds() for p in consumer.procs)
    redis_before, sink_before = stage.redis_proc.cpu_seconds(), sink.cpu_seconds()
    await preload(stage.redis, consumer.keys, events, first_id, int(time.time() * 1000))

    async def all_delivered() -> bool:
        return int((await sink_stats(sink))["count"]) >= expected

    await wait_for(all_delivered, f"{consumer.label}: {expected} deliveries", within=60 + expected / 200)
    stats = await sink_stats(sink)
    cpu = sum(p.cpu_seconds() for p in consumer.procs) - cpu_before
    count = int(stats["count"])
    seconds = (stats["last_ns"] - stats["first_ns"]) / 1e9
    run = {
        "rate": (count - 1) / seconds if seconds > 0 else float("nan"),
        "cpu_us": cpu_us_per_item(cpu, count),
        "redis_cpu_us": cpu_us_per_item(stage.redis_proc.cpu_seconds() - redis_before, count),
        "sink_cpu_us": cpu_us_per_item(sink.cpu_seconds() - sink_before, count),
        "delivered": count,
    }
    await wait_for(lambda: _drained(stage, consumer.keys), f"{consumer.label}: acknowledgements", within=30)
    for stream in consumer.keys.all_events():
        await stage.redis.xtrim(stream, maxlen=0, approximate=False)
    return run


async def _drained(stage: Stage, keys: Keys) -> bool:
    return await backlog(stage, keys) == 0
