"""Scale-out on a small box: N processes, each capped at a tenth of one CPU (bench/cgroup.py).

- **Workers**: 1, 2, 4 and 8 ``relay work`` processes drain a preloaded backlog, every feature on
  (a webhook with a filter and a ``rateLimit`` of 10,000/s that does not bind, breakers, attempt
  records, event search, read-your-writes: the defaults). Throughput is timed at the sink.
- **Listeners**: 1, 2 and 4 ``relay serve --reuse-port`` processes on one port, driven by the
  uncapped generator at 64 connections.

Capped, N processes have N tenths of a CPU between them, well inside the 2 cores that Redis, the
sink and the generator share with them: N x the rate of one is what scaling out can give, and
the ratio says how much of it the relay keeps (target: 0.9 x N). Each group's ``cpu.stat`` shows
the caps held (periods throttled). The sets take turns, round after round, each on a key prefix
(workers) or a port (listeners) of its own; each set is started for its turn (uncapped while it
starts and warms up, then capped) and stopped after it, so no idle process adds to Redis's CPU.

Where no cgroup is writable the processes run uncapped and the figure is events (requests) per
CPU-second of the processes, at N against 1: the section's title says so.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.cgroup import Controller, controller
from bench.config import Config
from bench.consumers import Consumer, deliver_run, sink_url
from bench.fleet import CAP_CPUS, capped, throttled
from bench.load import ID_BLOCK, Generator
from bench.procs import Proc
from bench.results import Row, at_least, below
from bench.scale_listeners import CONNECTIONS, run_listeners
from bench.stage import PARTITIONS, Stage
from bench.stats import Figure, ratios
from bench.subscriptions import FILTER, RATE_LIMIT
from relay.keys import Keys
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec

WORKERS = (1, 2, 4, 8)
TARGET = 0.9
"""N capped processes: at least 0.9 x N the rate of one."""
EVENTS_PER_WORKER = {"full": 10_000, "quick": 2_500}
"""Events per run per worker: every run lasts about as long (~6 s full at ~1,600 events/s each)."""
_blocks = itertools.count(5_000)


def _first_id() -> int:
    """Call ids of a run of their own (blocks apart from the other benchmarks')."""
    return next(_blocks) * ID_BLOCK


def bench_webhook(url: str) -> WebhookSpec:
    return WebhookSpec(
        name="bench scale-out",
        resource="OutboundCall",
        events=("Finished",),
        callback=f"{url}/match/0",
        secret="bench-subscriber-secret",
        filter=FILTER,
        rate_limit=RATE_LIMIT,
    )


def _share(runs: list[dict[str, float]], key: str) -> Figure:
    """% of one core: CPU µs per item times items a second."""
    return Figure.of([r[key] * r["rate"] / 1e4 for r in runs])


def _fig(runs: list[dict[str, float]], key: str, scale: float = 1.0) -> Figure:
    return Figure.of([r[key] * scale for r in runs])


def _efficiency(runs: dict[int, list[dict[str, float]]], n: int) -> Figure:
    """Uncapped: items per CPU-second of the processes at N over at 1 (inverse CPU per item)."""
    return Figure.of(ratios([r["cpu_us"] for r in runs[1]], [r["cpu_us"] for r in runs[n]]))


async def deferred(procs: list[Proc]) -> Counter[str]:
    """Deliveries the workers put off without an attempt, by kind (``rate_limit``, ``host_busy``,
    ``breaker_open``, ``single_use``): ``relay_deliveries_deferred_total`` from each one's
    ``/metrics``, summed."""
    kinds: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        for proc in procs:
            async with session.get(f"http://127.0.0.1:{proc.port}/metrics") as resp:
                text = await resp.text()
            for family in text_string_to_metric_families(text):
                if family.name == "relay_deliveries_deferred":
                    for sample in family.samples:
                        if sample.name.endswith("_total"):
                            kinds[sample.labels.get("kind", "")] += int(sample.value)
    return kinds


async def _worker_turn(
    stage: Stage, cpu: Controller | None, sink: Proc, n: int, events: int
) -> dict[str, float]:
    """``n`` workers started on their own key prefix, warmed up, capped, timed draining
    ``events``, stopped: no idle process polls Redis during another's turn."""
    prefix = f"benchscale{n}"
    names = [f"scale-work-{n}-{i}" for i in range(n)]
    procs = list(await asyncio.gather(*(stage.relay("work", name=x, key_prefix=prefix) for x in names)))
    consumer = Consumer(f"{n} workers", Keys(prefix, PARTITIONS), procs, 1)
    await deliver_run(stage, sink, consumer, 100 * n, _first_id())  # connections, scripts, the view
    async with capped(stage, cpu, f"relay-bench-work{n}", procs) as fleet:
        before = await deferred(procs)
        run = await throttled(fleet, deliver_run(stage, sink, consumer, events, _first_id()))
        kinds = await deferred(procs)
        kinds.subtract(before)
        run["deferred"] = kinds.total()
        run.update({f"deferred_{kind}": count for kind, count in kinds.items() if count})
        return run


async def _workers(stage: Stage, cpu: Controller | None, cfg: Config) -> dict[int, list[dict[str, float]]]:
    sink = await stage.sink()
    try:
        now_ms = int(time.time() * 1000)
        for n in WORKERS:
            keys = Keys(f"benchscale{n}", PARTITIONS)
            await WebhookStore(stage.redis, keys).create(bench_webhook(sink_url(sink)), now_ms)
        per_worker = EVENTS_PER_WORKER.get(cfg.mode, EVENTS_PER_WORKER["quick"])
        runs: dict[int, list[dict[str, float]]] = {n: [] for n in WORKERS}
        for _ in range(cfg.delivery_rounds):
            for n in WORKERS:
                runs[n].append(await _worker_turn(stage, cpu, sink, n, per_worker * n))
        return runs
    finally:
        await stage.stop(sink)


def scaling_rows(
    section: str, what: str, item: str, unit: str, runs: dict[int, list[dict[str, float]]], is_capped: bool
) -> list[Row]:
    """Per N: the rate, its ratio to one process (capped) or CPU-second efficiency (uncapped),
    each process's CPU, how often the caps throttled them, and Redis's (and the sink's) CPU."""
    one = what.removesuffix("s")
    rows = []
    for n, got in runs.items():
        many = f"{n} {what}" if n > 1 else f"1 {one}"
        rows.append(Row(section, many, unit, _fig(got, "rate")))
        if n > 1 and is_capped:
            ratio = Figure.of(ratios([r["rate"] for r in got], [r["rate"] for r in runs[1]]))
            rows.append(Row(section, f"{many} / 1", "x", ratio, f">= {TARGET * n:.1f}",
                            at_least(ratio, TARGET * n)))  # fmt: skip
        elif n > 1:
            ratio = _efficiency(runs, n)
            rows.append(Row(section, f"{many} / 1, {item}s per CPU-second", "x", ratio, f">= {TARGET}",
                            at_least(ratio, TARGET)))  # fmt: skip
        rows.append(Row(section, f"CPU of each {one}, {many}", "% of a core", _share_each(got, n)))
        if is_capped:
            rows.append(Row(section, f"periods throttled, {many}", "%", _fig(got, "throttled_share", 100)))
        rows.append(Row(section, f"redis CPU per {item}, {many}", "us", _fig(got, "redis_cpu_us")))
        rows.append(Row(section, f"redis CPU, {many}", "% of a core", _share(got, "redis_cpu_us")))
        if "deferred" in got[0]:
            rows.append(Row(section, f"deliveries put off, {many}", "per run",
                            _fig(got, "deferred"), "0", below(_fig(got, "deferred"), 1)))  # fmt: skip
        if "sink_cpu_us" in got[0]:
            rows.append(Row(section, f"sink CPU per delivery, {many}", "us", _fig(got, "sink_cpu_us")))
            rows.append(Row(section, f"sink CPU, {many}", "% of a core", _share(got, "sink_cpu_us")))
    return rows


def _share_each(runs: list[dict[str, float]], n: int) -> Figure:
    return Figure.of([r["cpu_us"] * r["rate"] / 1e4 / n for r in runs])


def _title(what: str, is_capped: bool) -> str:
    if is_capped:
        return f"scale-out: {what}, each capped at {CAP_CPUS} CPU (cgroup)"
    return f"scale-out: {what}, uncapped (no writable cgroup): items per CPU-second, N vs 1"


async def run_scale_out(stage: Stage, gen: Generator, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    cpu = controller()
    is_capped = cpu is not None
    workers = await _workers(stage, cpu, cfg)
    await stage.flush()
    listeners = await run_listeners(stage, gen, cpu, cfg)
    rows = scaling_rows(_title("workers", is_capped), "workers", "event", "events/s", workers, is_capped)
    rows += scaling_rows(
        _title("listeners", is_capped), "listeners", "callback", "req/s", listeners, is_capped
    )
    data = {
        "cgroup": f"v{cpu.version} at {cpu.base}" if cpu else None,
        "cap_cpus": CAP_CPUS if is_capped else None,
        "method": "capped: rate at N / rate at 1" if is_capped else "uncapped: items per process CPU-second",
        "events_per_worker_per_run": EVENTS_PER_WORKER.get(cfg.mode, EVENTS_PER_WORKER["quick"]),
        "webhook": {"filter": FILTER, "rateLimit": RATE_LIMIT},
        "listener_connections": CONNECTIONS,
        "generator": gen.name,
        "workers": {str(n): r for n, r in workers.items()},
        "listeners": {str(n): r for n, r in listeners.items()},
    }
    return rows, data
