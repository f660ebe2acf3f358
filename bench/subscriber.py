"""A realistic subscriber: one ``relay work`` at its defaults delivering to a sink that answers in
50 ms, and 500 to 1 % of first attempts (every call id divisible by 100; the retry is answered
200).

Two parts, on the same worker, with every feature on (a filter and a ``rateLimit`` on the
webhook; breakers, attempt records and event search by default):

- **Drain**: a preloaded backlog delivered; deliveries/s at the sink, first delivery to last.
  At the defaults a worker holds ``RELAY_MAX_PER_HOST`` (32) deliveries in flight to one host, so
  one 50 ms subscriber takes at most 640 a second from it.
- **Steady**: callbacks through one ``relay serve``, open loop, at about half the drained rate
  (``whole_hundreds``: exactly 1 % fail, so the p99 is the slowest delivery answered at once; the
  retried ones are reported apart): the latency from each callback's 2xx to its arrival at the
  sink (for the 500s, the retry's arrival), and the scheduled-retries sets' size
  (``Keys.scheduled``, all partitions), sampled every 0.25 s: it should stay flat (retries leave
  it as fast as failures add to them).

The first step of the default retry schedule is 5 s; the run sets ``RELAY_RETRY_SCHEDULE`` (the
documented setting) to ``RETRY_SCHEDULE``, whose first step is 1 s, so retries come due within
the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

from bench.config import Config
from bench.consumers import Consumer, backlog, relay_workers, sink_stats, wait_for
from bench.e2e import e2e_latencies_ms
from bench.ingest import url
from bench.load import ID_BLOCK, PythonLoad
from bench.preload import preload
from bench.procs import Proc
from bench.results import Row
from bench.stage import Stage
from bench.stats import Figure, cpu_us_per_item, percentile, slope
from relay.keys import Keys

SECTION = "realistic subscriber (50 ms, 1 % 500s; worker defaults)"
PREFIX = "benchsub"
DELAY_MS = 50.0
FAIL_EVERY = 100
RETRY_SCHEDULE = "1s, 5m, 30m, 2h, 5h, 10h, 10h"
"""The default schedule with its first step 5 s -> 1 s."""
_ids = itertools.count(1)


async def scheduled(stage: Stage, keys: Keys) -> int:
    """Retries waiting in every partition's scheduled set."""
    return sum([int(await stage.redis.zcard(keys.scheduled(p))) for p in range(keys.partitions)])


async def _watch(stage: Stage, keys: Keys, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - started, await scheduled(stage, keys)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def drain_run(stage: Stage, sink: Proc, worker: Consumer, events: int) -> dict[str, float]:
    """Preload ``events``; deliveries/s from the first arrival to the last of those answered 200
    at once (the retries come a schedule step later: they would time the step, not the worker)."""
    await sink_stats(sink, "/reset", "POST")
    cpu_before = worker.procs[0].cpu_seconds()
    await preload(stage.redis, worker.keys, events, (2000 + next(_ids)) * ID_BLOCK, int(time.time() * 1000))

    async def all_delivered() -> bool:
        return int((await sink_stats(sink))["count"]) >= events

    await wait_for(all_delivered, f"{events} deliveries and their retries", within=60 + events / 50)
    cpu = worker.procs[0].cpu_seconds() - cpu_before
    times = sorted(t for token, t in await sink_stats(sink, "/arrivals") if token % FAIL_EVERY)
    seconds = (times[-1] - times[0]) / 1e9 if len(times) > 1 else 0.0
    await wait_for(lambda: _settled(stage, worker.keys), "acknowledgements", within=30)
    return {
        "rate": (len(times) - 1) / seconds if seconds > 0 else float("nan"),
        "cpu_us": cpu_us_per_item(cpu, events + events // FAIL_EVERY),
        "delivered": float(events),
    }


async def _settled(stage: Stage, keys: Keys) -> bool:
    return await backlog(stage, keys) == 0 and await scheduled(stage, keys) == 0


async def steady_run(
    stage: Stage, gen: PythonLoad, listener: Proc, sink: Proc, keys: Keys, rate: float, seconds: float
) -> dict[str, Any]:
    """Open loop at ``rate`` for ``seconds``; latencies, and the retry backlog sampled."""
    await sink_stats(sink, "/reset", "POST")
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(stage, keys, samples, stop))
    result = await gen.open(url(listener), rate, seconds)
    stop.set()
    await watcher
    acks: list[list[int]] = result["acks"]  # type: ignore[assignment]

    async def all_arrived() -> bool:
        return int((await sink_stats(sink))["count"]) >= len(acks)

    with contextlib.suppress(TimeoutError):
        await wait_for(all_arrived, "deliveries and their retries", within=20)
    arrivals = await sink_stats(sink, "/arrivals")
    latencies, lost = e2e_latencies_ms(acks, arrivals)
    at_once, later = _split(acks, arrivals, {token for token, _ in acks if token % FAIL_EVERY == 0})
    depth = [float(n) for _, n in samples]
    return {
        "offered": rate,
        "answered": len(acks),
        "failed_first": (await sink_stats(sink))["failed"],
        "not_delivered": lost,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "at_once_p99_ms": percentile(at_once, 99),
        "retried_p50_ms": percentile(later, 50),
        "retries_first": depth[0] if depth else 0.0,
        "retries_last": depth[-1] if depth else 0.0,
        "retries_max": max(depth, default=0.0),
        "retries_slope": slope([t for t, _ in samples], depth),
    }


def whole_hundreds(rate: float, seconds: float, processes: int) -> float:
    """``rate`` moved so that each generator process sends a whole number of hundreds of call ids
    (each process's ids start at a multiple of 100): exactly 1 % of first attempts fail, and the
    p99 (nearest rank) is the slowest of the deliveries answered 200 at once, not sometimes that
    and sometimes a retry. Pure."""
    hundreds = max(1, round(rate * seconds / processes / FAIL_EVERY))
    return hundreds * FAIL_EVERY * processes / seconds


def _split(
    acks: list[list[int]], arrivals: list[list[int]], retried: set[int]
) -> tuple[list[float], list[float]]:
    """Latencies (ms) of the deliveries answered 200 at once, and of those retried. Pure."""
    arrived = {token: t for token, t in arrivals}
    at_once: list[float] = []
    later: list[float] = []
    for token, t in acks:
        if token in arrived:
            (later if token in retried else at_once).append((arrived[token] - t) / 1e6)
    return at_once, later


async def run_subscriber(stage: Stage, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    sink = await stage.sink(record=True, delay_ms=DELAY_MS, fail_every=FAIL_EVERY)
    settings = {"retry_schedule": RETRY_SCHEDULE}  # everything else at its default
    worker = await relay_workers(
        stage, "subscriber relay work", PREFIX, sink, every_feature=True, settings=settings
    )
    drains = []
    for n in range(1 + cfg.e2e_rounds):  # the first run warms up
        events = cfg.subscriber_events if n else max(200, cfg.subscriber_events // 10)
        run = await drain_run(stage, sink, worker, events)
        if n:
            drains.append(run)
    rate_figure = Figure.of([r["rate"] for r in drains])
    listener = await stage.relay("serve", name="subscriber-relay-serve", key_prefix=PREFIX)
    gen, seconds = PythonLoad(), cfg.e2e_seconds * 2
    rate = whole_hundreds(max(20.0, rate_figure.median / 2), seconds, gen.processes)
    runs = [await steady_run(stage, gen, listener, sink, worker.keys, rate, seconds)
            for _ in range(cfg.e2e_rounds)]  # fmt: skip

    def fig(key: str) -> Figure:
        return Figure.of([float(r[key]) for r in runs])

    rows = [
        Row(SECTION, "deliveries/s per worker (backlog drained)", "deliveries/s", rate_figure),
        Row(SECTION, "worker CPU per delivery", "us", Figure.of([r["cpu_us"] for r in drains])),
        Row(SECTION, "offered rate (half the drained rate)", "events/s", fig("offered")),
        Row(SECTION, "callback 2xx -> sink, p50", "ms", fig("p50_ms")),
        Row(SECTION, "callback 2xx -> sink, p99", "ms", fig("p99_ms")),
        Row(SECTION, "answered 200 at once: 2xx -> sink, p99", "ms", fig("at_once_p99_ms")),
        Row(SECTION, "answered 500, then retried: 2xx -> retry's arrival, p50", "ms", fig("retried_p50_ms")),
        Row(SECTION, "retries waiting, first sample", "retries", fig("retries_first")),
        Row(SECTION, "retries waiting, last sample", "retries", fig("retries_last")),
        Row(SECTION, "retries waiting, most", "retries", fig("retries_max")),
        Row(SECTION, "retries waiting, growth", "retries/s", fig("retries_slope")),
        Row(SECTION, "acknowledged but not delivered in 20 s", "events", fig("not_delivered")),
    ]
    data = {"drains": drains, "runs": runs, "rate": rate, "retry_schedule": RETRY_SCHEDULE,
            "sink": {"delay_ms": DELAY_MS, "fail_every": FAIL_EVERY}}  # fmt: skip
    for proc in (listener, *worker.procs, sink):
        await stage.stop(proc)
    return rows, data
