"""Tracing's cost: ingest and delivery CPU per item of the code before tracing (a baseline,
``--baseline REV``, default ``main``), of this code with tracing off, and with tracing on
(exporting over OTLP to a local server that answers 200), in one run, turn by turn, so a slow
spell of a shared machine falls on every variant alike.

The baseline is ``git archive REV relay`` unpacked in the stage's work directory and put first
on the ``PYTHONPATH`` of its processes; everything else (Redis, generator, sink) is shared.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.config import Config
from bench.consumers import WORKER_SETTINGS, Consumer, deliver_run, sink_url
from bench.ingest import measure_relay, url
from bench.load import ID_BLOCK, Generator
from bench.procs import Proc
from bench.results import Row
from bench.stage import PARTITIONS, Stage
from bench.stats import Figure, ratios
from bench.subscriptions import subscribe
from relay.keys import Keys

SECTION = "tracing"
BOUND = 1.02
"""Tracing off may cost at most 2% more CPU per item than the code before it."""
_ids = itertools.count(1)


def baseline_tree(rev: str, work_dir: Path) -> Path:
    """``rev``'s ``relay`` package, unpacked under ``work_dir``; the directory to put on PYTHONPATH."""
    root = Path(__file__).resolve().parent.parent
    target = work_dir / "baseline"
    target.mkdir(exist_ok=True)
    argv = ["git", "-C", str(root), "archive", rev, "relay"]
    archive = subprocess.run(argv, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def variants(baseline: Path, collector: Proc) -> dict[str, dict[str, str]]:
    """Each variant's extra environment."""
    return {
        "baseline": {"PYTHONPATH": str(baseline)},
        "off": {},
        "on": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}"},
    }


def _fig(runs: list[dict[str, float]], key: str) -> Figure:
    return Figure.of([r[key] for r in runs])


async def run_tracing(
    stage: Stage, gen: Generator, cfg: Config, rev: str
) -> tuple[list[Row], dict[str, Any]]:
    collector = await stage.ceiling()
    envs = variants(baseline_tree(rev, stage.work_dir), collector)
    ingest = await _ingest(stage, gen, cfg, envs)
    delivery = await _delivery(stage, cfg, envs)
    await stage.stop(collector)
    rows: list[Row] = []
    for what, runs, unit in (("ingest", ingest, "callback"), ("delivery", delivery, "event")):
        base = [r["cpu_us"] for r in runs["baseline"]]
        for name in envs:
            rows.append(Row(SECTION, f"{what} CPU per {unit}, {name}", "us", _fig(runs[name], "cpu_us")))
        for name in ("off", "on"):
            ratio = Figure.of(ratios([r["cpu_us"] for r in runs[name]], base))
            bounded = name == "off"
            rows.append(
                Row(SECTION, f"{what} CPU, tracing {name} / baseline", "x", ratio,
                    f"<= {BOUND}" if bounded else "", ratio.median <= BOUND if bounded else None)
            )  # fmt: skip
    return rows, {"baseline": rev, "ingest": ingest, "delivery": delivery}


async def _ingest(
    stage: Stage, gen: Generator, cfg: Config, envs: dict[str, dict[str, str]]
) -> dict[str, list[dict[str, float]]]:
    procs = {name: await stage.relay_in(env, "serve", name=f"serve-{name}") for name, env in envs.items()}
    for proc in procs.values():
        await gen.closed([url(proc)], 64, cfg.warmup_seconds)
    await stage.flush()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
    for _ in range(cfg.rounds):
        for name, proc in procs.items():
            runs[name].append(await measure_relay(stage, gen, [proc], 64, cfg.ingest_seconds))
    for proc in procs.values():
        await stage.stop(proc)
    return runs


async def _delivery(
    stage: Stage, cfg: Config, envs: dict[str, dict[str, str]]
) -> dict[str, list[dict[str, float]]]:
    sink = await stage.sink()
    consumers: dict[str, Consumer] = {}
    for name, env in envs.items():
        keys = Keys(f"benchtr{name}", PARTITIONS)
        await subscribe(stage.redis, keys, sink_url(sink), 1, 0, int(time.time() * 1000))
        proc = await stage.relay_in(
            env, "work", name=f"work-{name}", key_prefix=keys.prefix, **WORKER_SETTINGS
        )
        consumers[name] = Consumer(name, keys, [proc], 1)
    events = cfg.scale_events
    for consumer in consumers.values():
        await deliver_run(stage, sink, consumer, max(500, events // 10), (3000 + next(_ids)) * ID_BLOCK)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
    for _ in range(cfg.rounds):
        for name, consumer in consumers.items():
            first_id = (3000 + next(_ids)) * ID_BLOCK
            runs[name].append(await deliver_run(stage, sink, consumer, events, first_id))
    for consumer in consumers.values():
        await stage.stop(consumer.procs[0])
    await stage.stop(sink)
    return runs
