"""The stage a benchmark runs on: its own redis-server, and the processes it starts, all on
loopback, all stopped (each by its own pid) when the stage closes."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from types import TracebackType

from bench.procs import PYTHON, Proc, relay_env, spawn, wait_http
from relay.embedded import EmbeddedRedis, free_port
from relay.keys import Keys
from relay.store.connect import RedisClient, connect

PREFIX = "bench"
PARTITIONS = 4
KEYS = Keys(PREFIX, PARTITIONS)


class Stage:
    """``async with Stage() as stage``: a Redis with ``appendonly yes, appendfsync everysec``."""

    def __init__(self, work_dir: Path | None = None) -> None:
        self._tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="relay-bench-")
        self.work_dir = work_dir or Path(self._tmp.name if self._tmp else ".")
        self.log_dir = self.work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.embedded = EmbeddedRedis(self.work_dir / "redis", appendonly=True)
        self.procs: list[Proc] = []
        self._redis: RedisClient | None = None
        self._redis_proc: Proc | None = None

    async def __aenter__(self) -> Stage:
        await asyncio.to_thread(self.embedded.start)
        assert self.embedded.process is not None
        self._redis_proc = Proc("redis", self.embedded.process, self.embedded.data_dir / "redis.log")
        self._redis = connect(self.embedded.url)
        # AOF with fsync every second, as in production; but no background rewrite (a fork and a
        # full dataset write) landing in the middle of a run at a moment nobody chose.
        await self._redis.config_set("auto-aof-rewrite-percentage", 0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in list(self.procs):
            await self.stop(proc)
        if self._redis is not None:
            await self._redis.aclose()
        await asyncio.to_thread(self.embedded.stop)
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def redis(self) -> RedisClient:
        assert self._redis is not None, "the stage is not open"
        return self._redis

    @property
    def redis_proc(self) -> Proc:
        assert self._redis_proc is not None, "the stage is not open"
        return self._redis_proc

    @property
    def redis_url(self) -> str:
        return self.embedded.url

    async def relay(self, role: str, name: str | None = None, **settings: str) -> Proc:
        """``python -m relay serve|work`` against this stage's Redis, ready when it answers."""
        return await self.relay_in({}, role, name, **settings)

    async def relay_in(
        self, more: dict[str, str], role: str, name: str | None = None, **settings: str
    ) -> Proc:
        """``relay`` with ``more`` in the process's environment (``PYTHONPATH``, ``OTEL_*``)."""
        port = free_port()
        env = {**relay_env(self.redis_url, port, partitions=str(PARTITIONS), **settings), **more}
        proc = spawn(name or f"relay-{role}-{port}", [PYTHON, "-m", "relay", role], self.log_dir, env, port)
        return await self._ready(proc, "/readyz")

    async def ceiling(self) -> Proc:
        port = free_port()
        argv = [PYTHON, "-m", "bench.servers", "ceiling", "--port", str(port)]
        return await self._ready(spawn(f"ceiling-{port}", argv, self.log_dir, port=port), "/healthz")

    async def sink(self, record: bool = False, delay_ms: float = 0.0, fail_every: int = 0) -> Proc:
        """``bench.servers sink``; ``delay_ms`` and ``fail_every``: the realistic subscriber."""
        port = free_port()
        argv = [PYTHON, "-m", "bench.servers", "sink", "--port", str(port)] + (["--record"] if record else [])
        if delay_ms or fail_every:
            argv += ["--delay-ms", str(delay_ms), "--fail-every", str(fail_every)]
        return await self._ready(spawn(f"sink-{port}", argv, self.log_dir, port=port), "/healthz")

    async def python(self, name: str, module: str, *args: str) -> Proc:
        """A harness program in a process of its own (its log holds what it prints)."""
        proc = spawn(name, [PYTHON, "-m", module, *args], self.log_dir)
        self.procs.append(proc)
        return proc

    async def _ready(self, proc: Proc, path: str) -> Proc:
        self.procs.append(proc)
        await wait_http(proc, path)
        return proc

    async def stop(self, proc: Proc) -> None:
        await asyncio.to_thread(proc.stop)
        if proc in self.procs:
            self.procs.remove(proc)

    async def flush(self) -> None:
        """Empty this stage's own Redis between runs (never anyone else's)."""
        await self.redis.flushall()

    async def stream_length(self) -> int:
        lengths = [await self.redis.xlen(stream) for stream in KEYS.all_events()]
        return int(sum(lengths))
