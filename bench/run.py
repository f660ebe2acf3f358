"""One benchmark run: every chosen benchmark on one stage, then the JSON, the chart, the table."""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.chart import draw
from bench.config import Config
from bench.delivery import run_delivery, run_fanout
from bench.e2e import run_e2e
from bench.freshness import run_freshness
from bench.hotpaths import run_profile
from bench.ingest import run_ingest
from bench.load import Generator, generator
from bench.matching import run_matching
from bench.memory import peak_rows, run_memory
from bench.redis_cost import run_redis_cost
from bench.results import Report, Row, machine, table, write
from bench.scale_out import run_scale_out
from bench.stage import Stage
from bench.subscriber import run_subscriber
from bench.tracing import run_tracing

SUITES = (
    "ingest", "delivery", "fanout", "matching", "freshness", "e2e", "subscriber", "memory", "scale_out",
    "profile", "tracing", "redis_cost",
)  # fmt: skip
DEFAULT_SUITES = tuple(s for s in SUITES if s not in ("profile", "tracing"))


@dataclass
class Options:
    cfg: Config
    suites: tuple[str, ...]
    out_dir: Path
    prefer_wrk: bool = True
    baseline: str = "main"
    """The code ``tracing`` compares against (a git revision)."""


async def _suite(
    name: str, stage: Stage, gen: Generator, opts: Options, report: Report
) -> tuple[list[Row], Any]:
    cfg = opts.cfg
    if name == "ingest":
        return await run_ingest(stage, gen, cfg)
    if name == "scale_out":
        return await run_scale_out(stage, gen, cfg)
    if name == "delivery":
        return await run_delivery(stage, cfg)
    if name == "fanout":
        return await run_fanout(stage, cfg)
    if name == "matching":
        return await run_matching(cfg.matching_sizes, cfg.fanout_matching)
    if name == "freshness":
        return await run_freshness(stage, cfg.rounds)
    if name == "e2e":
        return await run_e2e(stage, cfg)
    if name == "subscriber":
        return await run_subscriber(stage, cfg)
    if name == "memory":
        return await run_memory(stage, cfg.small_backlog_events, cfg.backlog_events, cfg.memory_seconds)
    if name == "redis_cost":
        return await run_redis_cost(stage, gen, cfg)
    if name == "tracing":
        return await run_tracing(stage, gen, cfg, opts.baseline)
    if name == "profile":
        return [], await run_profile(stage, gen, cfg, opts.out_dir / "profiles", report.stem())
    raise ValueError(f"unknown benchmark {name!r}")


async def run(opts: Options, now: datetime) -> Report:
    report = Report(now, opts.cfg.mode, machine())
    async with Stage() as stage:
        gen = generator(opts.prefer_wrk, stage.work_dir, opts.cfg.bodies)
        report.machine["generator"] = gen.name
        for name in opts.suites:
            started = time.monotonic()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            try:
                rows, data = await _suite(name, stage, gen, opts, report)
            except Exception as exc:
                traceback.print_exc()
                report.skipped[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
                for proc in list(stage.procs):
                    await stage.stop(proc)
            else:
                report.add(rows, name, data)
            await stage.flush()
            print(f"bench: {name} done in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    report.rows.extend(peak_rows(report.sections))
    return report


def publish(report: Report, out_dir: Path) -> tuple[Path, Path | None]:
    path = write(report, out_dir)
    chart = draw(report, out_dir / f"{report.stem()}.png")
    print(table(report))
    print(
        f"\nresults: {path}"
        + (f"\nchart:   {chart}" if chart else "\nchart:   not drawn (pip install matplotlib)")
    )
    return path, chart
