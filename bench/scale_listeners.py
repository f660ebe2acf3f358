"""Scale-out, listeners: N ``relay serve --reuse-port`` processes on one port, each capped at a
tenth of one CPU, driven by the uncapped generator through one URL (the kernel spreads the
connections over the processes). Each set is started for its turn and stopped after it."""

from __future__ import annotations

import asyncio
import time

from bench.cgroup import Controller
from bench.config import Config
from bench.fleet import Fleet, capped, throttled
from bench.ingest import CALLBACK_PATH
from bench.load import Generator
from bench.procs import PYTHON, Proc, relay_env, spawn
from bench.stage import PARTITIONS, Stage
from bench.stats import cpu_us_per_item
from relay.embedded import free_port

LISTENERS = (1, 2, 4)
CONNECTIONS = 64


async def _started(proc: Proc, within: float = 30.0) -> None:
    """A process on a shared port: ready when its own log says it started (the port answers as
    soon as any of them is up)."""
    deadline = time.monotonic() + within
    while '"relay started"' not in proc.tail(40):
        if not proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} did not start:\n{proc.tail()}")
        await asyncio.sleep(0.05)


async def listeners_on_one_port(stage: Stage, n: int) -> list[Proc]:
    """``n`` ``relay serve --reuse-port`` on one new port, each started."""
    port = free_port()
    env = relay_env(stage.redis_url, port, partitions=str(PARTITIONS))
    argv = [PYTHON, "-m", "relay", "serve", "--reuse-port"]
    procs = [spawn(f"scale-serve-{n}-{i}-{port}", argv, stage.log_dir, env, port) for i in range(n)]
    stage.procs.extend(procs)
    for proc in procs:
        await _started(proc)
    return procs


async def _listener_turn(
    stage: Stage, gen: Generator, cpu: Controller | None, n: int, cfg: Config
) -> dict[str, float]:
    procs = await listeners_on_one_port(stage, n)
    await gen.closed([_url(procs[0])], CONNECTIONS, cfg.warmup_seconds)  # uncapped warm-up
    await stage.flush()
    async with capped(stage, cpu, f"relay-bench-serve{n}", procs) as fleet:
        run = await throttled(fleet, _serve_run(stage, gen, fleet, cfg.ingest_seconds))
    await stage.flush()
    return run


async def run_listeners(
    stage: Stage, gen: Generator, cpu: Controller | None, cfg: Config
) -> dict[int, list[dict[str, float]]]:
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in LISTENERS}
    for _ in range(cfg.rounds):
        for n in LISTENERS:
            runs[n].append(await _listener_turn(stage, gen, cpu, n, cfg))
    return runs


def _url(proc: Proc) -> str:
    return f"http://127.0.0.1:{proc.port}{CALLBACK_PATH}"


async def _serve_run(stage: Stage, gen: Generator, fleet: Fleet, seconds: float) -> dict[str, float]:
    """One URL: the kernel spreads the generator's connections over the processes on the port."""
    cpu_before = sum(p.cpu_seconds() for p in fleet.procs)
    redis_before = stage.redis_proc.cpu_seconds()
    result = await gen.closed([_url(fleet.procs[0])], CONNECTIONS, seconds)
    ok = result.requests - result.errors
    return {
        "rate": result.rate,
        "p99_ms": result.p99_ms,
        "cpu_us": cpu_us_per_item(sum(p.cpu_seconds() for p in fleet.procs) - cpu_before, ok),
        "redis_cpu_us": cpu_us_per_item(stage.redis_proc.cpu_seconds() - redis_before, ok),
        "requests": result.requests,
        "errors": result.errors,
    }
