"""Delivery: one ``relay work`` against the minimal loop, then 2 workers, then fan-out, turn by turn.

Throughput is timed at the sink (first delivery to last). On a small machine the sink and Redis
share the cores with the consumer, so CPU per event is reported beside it: it says what each
consumer would carry on a core of its own.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from bench.config import Config
from bench.consumers import WORKER_SETTINGS, Consumer, deliver_run, minimal_loop, relay_workers
from bench.load import ID_BLOCK
from bench.results import Row, at_least
from bench.stage import Stage
from bench.stats import Figure, ratios
from bench.subscriptions import FILTER, RATE_LIMIT

_ids = itertools.count(1)


def _first_id() -> int:
    return (1000 + next(_ids)) * ID_BLOCK


def _fig(runs: list[dict[str, float]], key: str) -> Figure:
    return Figure.of([r[key] for r in runs])


Plan = list[tuple[Consumer, int]]
"""Each consumer, and the events of each of its runs."""


async def _rounds(stage: Stage, sink: Any, plan: Plan, rounds: int) -> dict[str, list[dict[str, float]]]:
    """A warm-up run each, then ``rounds`` rounds in which every consumer takes its turn."""
    for consumer, events in plan:
        await deliver_run(stage, sink, consumer, max(500, events // 20), _first_id())
    runs: dict[str, list[dict[str, float]]] = {c.label: [] for c, _ in plan}
    for _ in range(rounds):
        for consumer, events in plan:
            runs[consumer.label].append(await deliver_run(stage, sink, consumer, events, _first_id()))
    return runs


async def run_delivery(stage: Stage, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    sink = await stage.sink()
    minimal = await minimal_loop(stage, sink)
    like = await minimal_loop(stage, sink, "benchlike", client="relay", label="minimal loop, relay client")
    one = await relay_workers(stage, "relay work", "benchw1", sink, every_feature=True)
    two = await relay_workers(stage, "2 relay work", "benchw2", sink, processes=2, every_feature=True)
    plan = [(minimal, cfg.delivery_events), (like, cfg.delivery_events), (one, cfg.delivery_events),
            (two, cfg.scale_events)]  # fmt: skip
    runs = await _rounds(stage, sink, plan, cfg.delivery_rounds)
    loop_runs, like_runs = runs[minimal.label], runs[like.label]
    one_runs, two_runs = runs[one.label], runs[two.label]
    ratio = Figure.of(ratios([r["rate"] for r in one_runs], [r["rate"] for r in loop_runs]))
    like_ratio = Figure.of(ratios([r["rate"] for r in one_runs], [r["rate"] for r in like_runs]))
    cpu_ratio = Figure.of(ratios([r["cpu_us"] for r in loop_runs], [r["cpu_us"] for r in one_runs]))
    like_cpu = Figure.of(ratios([r["cpu_us"] for r in like_runs], [r["cpu_us"] for r in one_runs]))
    scale = Figure.of(ratios([r["rate"] for r in two_runs], [r["rate"] for r in one_runs]))
    cores = os.cpu_count() or 1
    enough = cores >= 4  # two workers, Redis and the sink each want a core
    section = "delivery"
    scaling = f"scale: workers ({cores} cores)"
    rows = [
        Row(section, "minimal loop (aiohttp client)", "events/s", _fig(loop_runs, "rate")),
        Row(section, "minimal loop, relay client and acks", "events/s", _fig(like_runs, "rate")),
        Row(section, "relay work, 1 process, every feature", "events/s", _fig(one_runs, "rate")),
        Row(section, "relay / minimal loop (aiohttp)", "x", ratio, ">= 0.9", at_least(ratio, 0.9)),
        Row(section, "relay / minimal loop (relay client)", "x", like_ratio, ">= 0.8",
            at_least(like_ratio, 0.8)),
        Row(section, "relay CPU per event", "us", _fig(one_runs, "cpu_us")),
        Row(section, "minimal loop CPU per event (aiohttp)", "us", _fig(loop_runs, "cpu_us")),
        Row(section, "minimal loop CPU per event (relay client)", "us", _fig(like_runs, "cpu_us")),
        Row(section, "minimal loop CPU / relay CPU (aiohttp)", "x", cpu_ratio),
        Row(section, "minimal loop CPU / relay CPU (relay client)", "x", like_cpu),
        Row(section, "redis CPU per event (relay)", "us", _fig(one_runs, "redis_cpu_us")),
        Row(section, "redis CPU per event (minimal loop, relay client)", "us",
            _fig(like_runs, "redis_cpu_us")),
        Row(section, "sink CPU per delivery", "us", _fig(one_runs, "sink_cpu_us")),
        Row(scaling, "2 relay work processes", "events/s", _fig(two_runs, "rate")),
        Row(scaling, "2 workers / 1", "x", scale, ">= 1.6 given 4+ cores",
            at_least(scale, 1.6) if enough else None),
    ]  # fmt: skip
    consumers = (minimal, like, one, two)
    peak = {f"{c.label} #{n}": p.peak_rss_kib() for c in consumers for n, p in enumerate(c.procs)}
    peak["sink"] = sink.peak_rss_kib()
    data = {
        "events_per_run": {"1 worker and minimal loops": cfg.delivery_events, "2 workers": cfg.scale_events},
        "worker_settings": {f"RELAY_{k.upper()}": v for k, v in WORKER_SETTINGS.items()},
        "webhook": {"filter": FILTER, "rateLimit": RATE_LIMIT},
        "runs": runs,
        "cores": cores,
        "peak_rss_kib": peak,
    }
    for consumer in consumers:
        for proc in consumer.procs:
            await stage.stop(proc)
    await stage.stop(sink)
    return rows, data


async def run_fanout(stage: Stage, cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    """``fanout_matching`` webhooks match every event, beside none or ``fanout_webhooks`` others."""
    sink = await stage.sink()
    m, total = cfg.fanout_matching, cfg.fanout_webhooks
    alone = await relay_workers(stage, f"{m} of {m} webhooks", "benchfan0", sink, matching=m)
    among = await relay_workers(
        stage, f"{m} of {total:,} webhooks", "benchfan1", sink, matching=m, others=total - m
    )
    runs = await _rounds(
        stage, sink, [(alone, cfg.fanout_events), (among, cfg.fanout_events)], cfg.delivery_rounds
    )
    few, many = runs[alone.label], runs[among.label]
    growth = Figure.of(ratios([r["cpu_us"] for r in many], [r["cpu_us"] for r in few]))
    section = f"fan-out: each event matches {m} webhooks"
    rows = [
        Row(section, f"{m} of {m} webhooks", "deliveries/s", _fig(few, "rate")),
        Row(section, f"{m} of {total:,} webhooks", "deliveries/s", _fig(many, "rate")),
        Row(section, f"CPU per delivery, {m} of {m}", "us", _fig(few, "cpu_us")),
        Row(section, f"CPU per delivery, {m} of {total:,}", "us", _fig(many, "cpu_us")),
        Row(section, f"CPU per delivery, {total:,} webhooks / {m}", "x", growth),
    ]
    data = {"events_per_run": cfg.fanout_events, "runs": runs}
    for proc in alone.procs + among.procs:
        await stage.stop(proc)
    await stage.stop(sink)
    return rows, data
