"""Hostile subscribers against a real `relay work` process: an endless chunked trailer, endless
headers, a body trickled a byte at a time, an answer sent before the request was read (with a
stale one behind it). Each costs its worker bounded CPU and memory, and a well-behaved
subscriber's deliveries are all made while the hostile ones are still going. Measured on the
worker process alone (its /proc entries); the hostile servers and the sink run in the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.delivery_harness import Harness, open_harness
from tests.processes import RelayProcess

pytestmark = pytest.mark.slow

Make = Callable[..., Settings]
EVENTS = 40
TIMEOUT = 3.0
"""The worker's RELAY_DELIVERY_TIMEOUT, seconds."""


async def endless_trailer(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Endless: ")
    while True:
        writer.write(b"t" * 16384)
        await writer.drain()


async def endless_headers(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X-Many: y\r\n" * 1000)
        await writer.drain()


async def trickled_body(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while True:
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.05)


async def early_answer(writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n"
    )
    await writer.drain()
    await asyncio.sleep(3600)


MODES = {
    "endless_trailer": endless_trailer,
    "endless_headers": endless_headers,
    "trickled_body": trickled_body,
    "early_answer": early_answer,
}


class Hostile:
    """One raw server per mode, each on its own port (its own host, for the per-host limits)."""

    def __init__(self) -> None:
        self.servers: dict[str, asyncio.Server] = {}
        self.open: dict[str, int] = dict.fromkeys(MODES, 0)
        self.connections: dict[str, int] = dict.fromkeys(MODES, 0)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Hostile:
        for mode in MODES:
            self.servers[mode] = await asyncio.start_server(
                lambda r, w, mode=mode: self._serve(mode, r, w), "127.0.0.1", 0
            )
        return self

    def url(self, mode: str) -> str:
        port = self.servers[mode].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/{mode}"

    async def _serve(self, mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.open[mode] += 1
        self.connections[mode] += 1
        try:
            if mode != "early_answer":
                await reader.readuntil(b"\r\n\r\n")  # the head; the small body follows unread
            await MODES[mode](writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.open[mode] -= 1
            self._tasks.discard(task)
            writer.close()

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()


@contextlib.asynccontextmanager
async def hostile_servers() -> AsyncIterator[Hostile]:
    hostile = await Hostile().start()
    try:
        yield hostile
    finally:
        await hostile.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def worker(h: Harness, log: Path) -> RelayProcess:
    return RelayProcess(
        "work",
        log,
        redis_url=str(h.settings.redis_url),
        key_prefix=h.settings.key_prefix,
        partitions=str(h.settings.partitions),
        egress_allow="127.0.0.0/8",
        delivery_timeout=f"{TIMEOUT:g}s",
        retry_schedule="1h",  # no retry inside the test: every attempt is a first one
        log_level="warning",
    )


async def test_hostile_subscribers_cost_bounded_cpu_and_memory_and_delay_no_one(
    make_settings: Make, redis: RedisClient, tmp_path: Path
) -> None:
    """40 events to 4 hostile subscribers and a good one: the good one gets all 40 while the
    trickled body is still being sent; the worker spends less CPU than a sixth of the attempt
    timeout and its peak memory grows by less than 40 MiB."""
    async with open_harness(make_settings, redis) as h, hostile_servers() as hostile:
        for mode in MODES:
            await h.webhook_unsynced(f"/{mode}", callback=hostile.url(mode))
        await h.webhook_unsynced("/good")
        process = worker(h, tmp_path / "worker.log").start()
        try:
            assert process.proc is not None
            pid = process.proc.pid
            cpu_before, rss_before = cpu_seconds(pid), peak_rss_mib(pid)
            for _ in range(EVENTS):
                await h.publish()
            await h.sink.wait_for(EVENTS, "/good", within=TIMEOUT)
            still_trickling = hostile.open["trickled_body"]
            await asyncio.sleep(TIMEOUT + 1.0)  # every first attempt has ended, one way or another
            cpu, rss = cpu_seconds(pid) - cpu_before, peak_rss_mib(pid) - rss_before
            print(f"worker: {cpu:.3f} s CPU, peak RSS +{rss:.1f} MiB, {hostile.connections}")
        finally:
            process.terminate()
        assert still_trickling > 0
        assert all(hostile.connections[mode] > 0 for mode in MODES), hostile.connections
        assert cpu < TIMEOUT / 6, f"{cpu:.2f} s of CPU"
        assert rss < 40, f"peak RSS grew {rss:.1f} MiB"
