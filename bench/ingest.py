"""Ingest: ``relay serve`` against a bare aiohttp app, same generator, same bodies, turn by turn.

Each round measures the ceiling and then the relay at every concurrency, so slow spells of a
shared machine fall on both; the ratio is taken run by run. Between relay runs the stage's Redis
is emptied, so every callback of the next run is new (checked: ``fresh`` counts stream entries).
"""

from __future__ import annotations

from typing import Any

from bench.config import Config
from bench.load import Generator
from bench.procs import Proc
from bench.results import Row, at_least, below
from bench.stage import Stage
from bench.stats import Figure, cpu_us_per_item, ratios

CALLBACK_PATH = "/callbacks/callfire"
SECTION = "ingest"


def url(proc: Proc) -> str:
    return f"http://127.0.0.1:{proc.port}{CALLBACK_PATH}"


async def measure(
    stage: Stage, gen: Generator, procs: list[Proc], concurrency: int, seconds: float
) -> dict[str, float]:
    """One run against ``procs`` (load split between them): rate, latency, CPU per request."""
    cpu_before = sum(p.cpu_seconds() for p in procs)
    redis_before = stage.redis_proc.cpu_seconds()
    result = await gen.closed([url(p) for p in procs], concurrency, seconds)
    ok = result.requests - result.errors
    return {
        "rate": result.rate,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "cpu_us": cpu_us_per_item(sum(p.cpu_seconds() for p in procs) - cpu_before, ok),
        "redis_cpu_us": cpu_us_per_item(stage.redis_proc.cpu_seconds() - redis_before, ok),
        "requests": result.requests,
        "errors": result.errors,
    }


async def measure_relay(
    stage: Stage, gen: Generator, procs: list[Proc], concurrency: int, seconds: float
) -> dict[str, float]:
    run = await measure(stage, gen, procs, concurrency, seconds)
    run["fresh"] = await stage.stream_length()
    await stage.flush()
    return run


def _figure(runs: list[dict[str, float]], key: str) -> Figure:
    return Figure.of([r[key] for r in runs])


def _rows_for(concurrency: int, relay: list[dict[str, float]], ceiling: list[dict[str, float]]) -> list[Row]:
    c = f"c{concurrency}"
    ratio = Figure.of(ratios([r["rate"] for r in relay], [r["rate"] for r in ceiling]))
    p99 = _figure(relay, "p99_ms")
    targeted = concurrency == 64
    return [
        Row(SECTION, f"relay serve, {c}", "req/s", _figure(relay, "rate")),
        Row(SECTION, f"bare aiohttp ceiling, {c}", "req/s", _figure(ceiling, "rate")),
        Row(SECTION, f"relay / ceiling, {c}", "x", ratio, ">= 0.45" if targeted else "",
            at_least(ratio, 0.45) if targeted else None),
        Row(SECTION, f"relay p50, {c}", "ms", _figure(relay, "p50_ms")),
        Row(SECTION, f"relay p99, {c}", "ms", p99, "< 10" if targeted else "",
            below(p99, 10) if targeted else None),
        Row(SECTION, f"ceiling p99, {c}", "ms", _figure(ceiling, "p99_ms")),
        Row(SECTION, f"relay CPU per callback, {c}", "us", _figure(relay, "cpu_us")),
        Row(SECTION, f"ceiling CPU per request, {c}", "us", _figure(ceiling, "cpu_us")),
        Row(SECTION, f"redis CPU per callback, {c}", "us", _figure(relay, "redis_cpu_us")),
    ]  # fmt: skip


async def run_ingest(stage: Stage, gen: Generator, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    ceiling = await stage.ceiling()
    relay = await stage.relay("serve", name="relay-serve")
    for proc in (ceiling, relay):  # warm-up: imports, first connections, the script load
        await gen.closed([url(proc)], 64, cfg.warmup_seconds)
    await stage.flush()
    runs: dict[int, dict[str, list[dict[str, float]]]] = {
        c: {"relay": [], "ceiling": []} for c in cfg.concurrencies
    }
    for _ in range(cfg.rounds):
        for c in cfg.concurrencies:
            runs[c]["ceiling"].append(await measure(stage, gen, [ceiling], c, cfg.ingest_seconds))
            runs[c]["relay"].append(await measure_relay(stage, gen, [relay], c, cfg.ingest_seconds))
    rows = [row for c in cfg.concurrencies for row in _rows_for(c, runs[c]["relay"], runs[c]["ceiling"])]
    data = {
        "generator": gen.name,
        "seconds_per_run": cfg.ingest_seconds,
        "runs": {f"c{c}": v for c, v in runs.items()},
        "peak_rss_kib": {"relay serve": relay.peak_rss_kib(), "ceiling": ceiling.peak_rss_kib()},
    }
    await stage.stop(ceiling)
    await stage.stop(relay)
    return rows, data
