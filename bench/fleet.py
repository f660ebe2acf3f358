"""A set of benchmark processes, each capped at a tenth of one CPU in a cgroup of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bench.cgroup import NO_THROTTLING, Cap, Controller, Throttling
from bench.procs import Proc
from bench.stage import Stage

CAP_CPUS = 0.1


@dataclass
class Fleet:
    """N processes of one kind, each in a group of its own (none without a cgroup controller)."""

    n: int
    procs: list[Proc]
    caps: list[Cap] = field(default_factory=list)

    def throttling(self) -> Throttling:
        total = NO_THROTTLING
        for cap in self.caps:
            total = total + cap.throttling()
        return total

    def remove(self) -> None:
        for cap in self.caps:
            cap.remove()


@asynccontextmanager
async def capped(stage: Stage, cpu: Controller | None, label: str, procs: list[Proc]) -> AsyncIterator[Fleet]:
    """``procs`` (started uncapped: imports and start-up do not count), each capped in a group of
    its own (none without a controller), then stopped and their groups removed."""
    fleet = Fleet(len(procs), procs)
    try:
        for n, proc in enumerate(procs):
            if cpu is not None:
                fleet.caps.append(cpu.cap(f"{label}-{n}", CAP_CPUS))
                fleet.caps[-1].add(proc.pid)
        yield fleet
    finally:
        await asyncio.gather(*(stage.stop(proc) for proc in procs))
        fleet.remove()


async def throttled(fleet: Fleet, run: Awaitable[dict[str, float]]) -> dict[str, float]:
    before = fleet.throttling()
    result = await run
    spent = fleet.throttling() - before
    result["periods"], result["throttled"] = spent.periods, spent.throttled
    result["throttled_share"] = spent.throttled / spent.periods if spent.periods else float("nan")
    return result
