"""``--profile``: py-spy on ``relay serve`` under ingest load and on ``relay work`` delivering,
summed by function and kept beside the results (``<stem>-ingest.collapsed`` and so on)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench.config import Config
from bench.consumers import deliver_run, relay_workers
from bench.delivery import _first_id
from bench.ingest import url
from bench.load import Generator
from bench.profile import Profile, record
from bench.stage import Stage


async def _profile_ingest(stage: Stage, gen: Generator, cfg: Config, out: Path) -> Profile | None:
    relay = await stage.relay("serve", name="profile-relay-serve")
    await gen.closed([url(relay)], 64, cfg.warmup_seconds)
    spy = asyncio.create_task(record(relay.pid, cfg.profile_seconds, out))
    await gen.closed([url(relay)], 64, cfg.profile_seconds + 1)
    found = await spy
    await stage.stop(relay)
    await stage.flush()
    return found


async def _profile_delivery(stage: Stage, cfg: Config, out: Path) -> Profile | None:
    sink = await stage.sink()
    consumer = await relay_workers(stage, "profile relay work", "benchprof", sink, every_feature=True)
    await deliver_run(stage, sink, consumer, 500, _first_id())
    spy = asyncio.create_task(record(consumer.procs[0].pid, cfg.profile_seconds, out))
    await deliver_run(stage, sink, consumer, cfg.scale_events, _first_id())
    found = await spy
    await stage.stop(consumer.procs[0])
    await stage.stop(sink)
    return found


async def run_profile(stage: Stage, gen: Generator, cfg: Config, out_dir: Path, stem: str) -> dict[str, Any]:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    found = {
        "ingest": await _profile_ingest(stage, gen, cfg, out_dir / f"{stem}-ingest.collapsed"),
        "delivery": await _profile_delivery(stage, cfg, out_dir / f"{stem}-delivery.collapsed"),
    }
    for name, profile in found.items():
        print(f"\n== where {name} spends its CPU (py-spy, on-CPU samples)")
        print(profile.text() if profile else "py-spy is not installed or may not attach (ptrace)")
    return {name: p.to_json() if p else None for name, p in found.items()}
