"""Driving load: ``wrk`` with ``post.lua`` where installed, else the aiohttp generator processes.

Both post the same signed ~1 KB callbacks, each body once per run, at a fixed concurrency, and
report the same figures.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from bench.payload import Signer
from bench.procs import PYTHON
from bench.stats import percentile

LUA = Path(__file__).with_name("post.lua")
ID_BLOCK = 100_000_000
"""Each run, and each generator process, draws call ids from a block of its own."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


class Generator(Protocol):
    name: str

    async def closed(self, urls: list[str], concurrency: int, duration: float) -> LoadResult:
        """``concurrency`` connections in all, spread over ``urls``, for ``duration`` seconds."""
        ...


def merge(results: list[LoadResult]) -> LoadResult:
    """Several generators side by side: rates add up; latencies are those of the worst."""
    seconds = max(r.seconds for r in results)
    return LoadResult(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=seconds,
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
    )


async def _output(argv: list[str], within: float) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"{argv[0]} did not finish within {within}s") from None
    if proc.returncode != 0:
        said = (err or out).decode(errors="replace")[-500:]
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {said}")
    return out


class Wrk:
    """``wrk -t1`` per target URL, with the bodies of one file (formatted once, in wrk's init)."""

    name = "wrk"

    def __init__(self, bodies: Path, count: int) -> None:
        self.bodies = bodies
        self.count = count
        self._starts = itertools.count(0, 7919)

    @staticmethod
    def available() -> bool:
        return shutil.which("wrk") is not None

    @classmethod
    def prepared(cls, work_dir: Path, count: int, now_ms: int) -> Wrk:
        path = work_dir / "bodies.tsv"
        with path.open("wb") as out:
            out.writelines(Signer(now_ms).lines(1, count))
        return cls(path, count)

    async def _one(self, url: str, concurrency: int, duration: float, start: int) -> LoadResult:
        seconds = max(1, round(duration))  # wrk takes whole seconds
        argv = [
            "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s",
            "-s", str(LUA), url, "--", str(self.bodies), str(start),
        ]  # fmt: skip
        out = await _output(argv, within=duration + 60)
        line = next(ln for ln in reversed(out.decode().splitlines()) if ln.startswith("{"))
        data = orjson.loads(line)
        return LoadResult(
            requests=data["requests"],
            errors=data["status_errors"] + data["socket_errors"],
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
        )

    async def closed(self, urls: list[str], concurrency: int, duration: float) -> LoadResult:
        share = max(1, concurrency // len(urls))
        offset = self.count // len(urls)
        start = next(self._starts) % self.count
        runs = [self._one(u, share, duration, (start + n * offset) % self.count) for n, u in enumerate(urls)]
        return merge(list(await asyncio.gather(*runs)))


class PythonLoad:
    """``processes`` aiohttp generator processes, splitting the connections between them."""

    name = "aiohttp"

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self._blocks = itertools.count(1)

    def next_block(self) -> int:
        return next(self._blocks) * ID_BLOCK

    async def closed(self, urls: list[str], concurrency: int, duration: float) -> LoadResult:
        procs = max(self.processes, len(urls))
        share = max(1, concurrency // procs)
        runs = [
            _output(
                [PYTHON, "-m", "bench.loadgen", "closed", "--url", urls[n % len(urls)],
                 "--concurrency", str(share), "--duration", str(duration),
                 "--first-id", str(self.next_block())],
                within=duration + 60,
            )
            for n in range(procs)
        ]  # fmt: skip
        outputs = [orjson.loads(o) for o in await asyncio.gather(*runs)]
        latencies = [lat for o in outputs for lat in o["latencies_us"]]
        return LoadResult(
            requests=sum(o["requests"] for o in outputs),
            errors=sum(o["errors"] for o in outputs),
            seconds=max(o["seconds"] for o in outputs),
            p50_ms=percentile(latencies, 50) / 1000,
            p99_ms=percentile(latencies, 99) / 1000,
        )

    async def open(self, url: str, rate: float, duration: float) -> dict[str, object]:
        """``processes`` open-loop processes sharing ``rate``: their JSON merged (requests,
        errors, latencies, acks). One process alone falls behind first on a small machine."""
        runs = [
            _output(
                [PYTHON, "-m", "bench.loadgen", "open", "--url", url, "--rate", str(rate / self.processes),
                 "--duration", str(duration), "--first-id", str(self.next_block())],
                within=duration + 60,
            )
            for _ in range(self.processes)
        ]  # fmt: skip
        outputs = [orjson.loads(o) for o in await asyncio.gather(*runs)]
        merged: dict[str, object] = dict(outputs[0])
        for key in ("requests", "errors"):
            merged[key] = sum(o[key] for o in outputs)
        for key in ("latencies_us", "acks"):
            merged[key] = [item for o in outputs for item in o[key]]
        return merged


def generator(prefer_wrk: bool, work_dir: Path, bodies: int) -> Generator:
    if prefer_wrk and Wrk.available():
        return Wrk.prepared(work_dir, bodies, int(time.time() * 1000))
    return PythonLoad()
