"""End to end: callbacks in at a fixed rate below saturation, deliveries out; the latency from a
callback's 2xx to the sink receiving its event, and whether the backlog stays flat.

One ``relay serve`` and one ``relay work``. Their capacity together is measured first: the
listener driven as hard as it goes while the worker delivers, capacity being the rate the sink
received at meanwhile (on a small machine every process shares the same cores, so this is well
below what each carries alone). It is driven by the same aiohttp generator processes that then
send, open loop, at half of it: their own CPU counts against the capacity as it does in the run
(a capacity found with wrk would leave the slower generator short of cores, and its clock late). Clocks: both
sides read CLOCK_MONOTONIC, which every process on the machine shares.

Every feature is on, as the relay will be used: the webhook has a filter and a ``rateLimit``
(10,000: leased from Redis in batches, never binding here); breakers, attempt records and event
search are on by default. Beside the latencies, a thread of the harness sleeps 5 ms at a time
and notes how late it wakes up: the machine's scheduling delay during the run. A callback's way
crosses six processes (generator, listener, Redis, worker, Redis, sink), each woken at least
once; on a machine whose cores are all busy, each wake-up can wait that long.

Where the time goes: each run's hops (``bench.hops``: listener -> Redis -> worker's read -> POST
-> sink, from what the relay writes anyway), their p50 and p99, and their median over the
slowest 1 % end to end; and the CPU each process used during the run, in cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from bench.config import Config
from bench.consumers import backlog, relay_workers, sink_stats, wait_for
from bench.hops import HOPS, breakdown, mono_offset_ns, timelines
from bench.ingest import url
from bench.load import Generator, PythonLoad
from bench.procs import Proc
from bench.results import Row, below
from bench.stage import PARTITIONS, Stage
from bench.stats import Figure, backlog_is_flat, percentile, slope
from relay.keys import Keys

SECTION = "end to end (half capacity)"
PREFIX = "benche2e"
KEYS = Keys(PREFIX, PARTITIONS)
CPU_OF = ("listener", "worker", "redis", "sink")
"""The processes whose CPU (in cores, over the run) is reported."""


def e2e_latencies_ms(
    acks: Sequence[Sequence[int]], arrivals: Sequence[Sequence[int]]
) -> tuple[list[float], int]:
    """Per call id answered 2xx: milliseconds from its 2xx to its arrival at the sink; and how
    many acknowledged callbacks never arrived. Pure."""
    arrived = {token: t for token, t in arrivals}
    latencies = [(arrived[token] - t) / 1e6 for token, t in acks if token in arrived]
    return latencies, sum(1 for token, _ in acks if token not in arrived)


class WakeupProbe:
    """A thread that sleeps ``every`` seconds at a time and notes how late it woke (ms)."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.late_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wakeup-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic_ns()
            time.sleep(self.every)
            self.late_ms.append(max(0.0, (time.monotonic_ns() - started) / 1e6 - self.every * 1000))

    def __enter__(self) -> WakeupProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def _watch_backlog(
    stage: Stage, keys: Keys, samples: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - started, await backlog(stage, keys)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def one_run(
    stage: Stage, gen: PythonLoad, listener: Proc, worker: Proc, sink: Proc, rate: float, seconds: float
) -> dict[str, Any]:
    await sink_stats(sink, "/reset", "POST")
    procs: dict[str, Proc] = {"listener": listener, "worker": worker, "redis": stage.redis_proc, "sink": sink}
    cpu_before = {name: proc.cpu_seconds() for name, proc in procs.items()}
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_backlog(stage, KEYS, samples, stop))
    with WakeupProbe() as probe:
        started = time.monotonic()
        result = await gen.open(url(listener), rate, seconds)
        took = time.monotonic() - started
        cpu = {f"{name}_cores": (p.cpu_seconds() - cpu_before[name]) / took for name, p in procs.items()}
    stop.set()
    await watcher
    acks: list[list[int]] = result["acks"]  # type: ignore[assignment]

    async def all_arrived() -> bool:
        return int((await sink_stats(sink))["count"]) >= len(acks)

    with contextlib.suppress(TimeoutError):
        await wait_for(all_arrived, "end-to-end deliveries", within=15)
    arrivals = await sink_stats(sink, "/arrivals")
    latencies, lost = e2e_latencies_ms(acks, arrivals)
    lines = await timelines(stage.redis, KEYS, acks, arrivals, mono_offset_ns())
    hops = breakdown(lines)
    ingest: list[int] = result["latencies_us"]  # type: ignore[assignment]
    times, depth = [t for t, _ in samples], [float(b) for _, b in samples]
    return {
        "offered": rate,
        "answered": len(acks),
        "errors": result["errors"],
        "not_delivered": lost,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "ingest_p50_ms": percentile(ingest, 50) / 1000,
        "ingest_p99_ms": percentile(ingest, 99) / 1000,
        "wakeup_p50_ms": percentile(probe.late_ms, 50),
        "wakeup_p99_ms": percentile(probe.late_ms, 99),
        "backlog_max": max(depth, default=0.0),
        "backlog_slope": slope(times, depth),
        "flat": backlog_is_flat(times, depth, rate),
        "hops": hops,
        **cpu,
    }


async def measure_capacity(stage: Stage, gen: Generator, listener: Proc, sink: Proc, seconds: float) -> float:
    """Events/s the pair carries: what the sink receives while the listener is driven at c64."""
    await sink_stats(sink, "/reset", "POST")
    offered = await gen.closed([url(listener)], 64, seconds)
    stats = await sink_stats(sink)
    window = (stats["last_ns"] - stats["first_ns"]) / 1e9
    delivered = (stats["count"] - 1) / window if window > 0 else 0.0
    await wait_for(lambda: _drained(stage), "the backlog after the capacity probe", within=120, every=0.25)
    return min(offered.rate, delivered)


async def _drained(stage: Stage) -> bool:
    return await backlog(stage, KEYS) == 0


async def run_e2e(stage: Stage, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    sink = await stage.sink(record=True)
    worker = (await relay_workers(stage, "e2e relay work", PREFIX, sink, every_feature=True)).procs[0]
    listener = await stage.relay("serve", name="e2e-relay-serve", key_prefix=PREFIX)
    gen = PythonLoad()
    capacity = await measure_capacity(stage, gen, listener, sink, max(2.0, cfg.e2e_seconds / 2))
    rate = max(50.0, capacity / 2)
    await one_run(stage, gen, listener, worker, sink, rate, 1.0)  # warm-up
    seconds = cfg.e2e_seconds
    runs = [await one_run(stage, gen, listener, worker, sink, rate, seconds) for _ in range(cfg.e2e_rounds)]

    def fig(key: str) -> Figure:
        return Figure.of([float(r[key]) for r in runs])

    p50, p99 = fig("p50_ms"), fig("p99_ms")
    flat = all(r["flat"] for r in runs)
    rows = [
        Row(SECTION, "capacity, relay serve + relay work together", "events/s", Figure.of([capacity])),
        Row(SECTION, "offered rate (half)", "events/s", fig("offered")),
        Row(SECTION, "callback 2xx -> sink, p50", "ms", p50, "< 5", below(p50, 5)),
        Row(SECTION, "callback 2xx -> sink, p99", "ms", p99, "< 10", below(p99, 10)),
        Row(SECTION, "callback answered (from due time), p99", "ms", fig("ingest_p99_ms")),
        Row(SECTION, "a sleeping thread's wake-up delay, p50", "ms", fig("wakeup_p50_ms")),
        Row(SECTION, "a sleeping thread's wake-up delay, p99", "ms", fig("wakeup_p99_ms")),
        *(Row(SECTION, f"CPU of {name} during the run", "cores", fig(f"{name}_cores")) for name in CPU_OF),
        Row(SECTION, "backlog, most entries waiting", "entries", fig("backlog_max"), "flat", flat),
        Row(SECTION, "backlog growth", "entries/s", fig("backlog_slope")),
        Row(SECTION, "acknowledged but not delivered in 15 s", "events", fig("not_delivered")),
    ]
    for hop, _, _ in HOPS:
        for stat, label in (("p50", "p50"), ("p99", "p99"), ("slowest_1pct_p50", "slowest 1 %'s median")):
            figure = Figure.of([float(r["hops"][hop][stat]) for r in runs])
            rows.append(Row(SECTION, f"hop {hop}, {label}", "ms", figure))
    peak = {"e2e relay serve": listener.peak_rss_kib(), "e2e relay work": worker.peak_rss_kib()}
    for proc in (listener, worker, sink):
        await stage.stop(proc)
    return rows, {"capacity": capacity, "rate": rate, "runs": runs, "peak_rss_kib": peak}
