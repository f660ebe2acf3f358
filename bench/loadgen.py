"""The aiohttp load generator, run in processes of its own: ``python -m bench.loadgen``.

- ``closed``: ``--concurrency`` connections, each posting the next callback as soon as the last
  is answered, for ``--duration`` seconds (the fallback when ``wrk`` is not installed).
- ``open``: callbacks sent at a fixed ``--rate``, whether or not earlier ones were answered
  (the end-to-end benchmark). Notes when each call id was answered 2xx, for the sink to match.

Prints one JSON object on stdout; latencies in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.payload import Signer


@dataclass
class Tally:
    ok: int = 0
    errors: int = 0
    latencies_us: list[int] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)
    """(call id, monotonic ns of its 2xx), open loop only."""

    def to_json(self, seconds: float) -> bytes:
        return orjson.dumps(
            {
                "requests": self.ok + self.errors,
                "errors": self.errors,
                "seconds": seconds,
                "latencies_us": self.latencies_us,
                "acks": self.acks,
            }
        )


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    signer: Signer,
    call_id: int,
    since: int,
    tally: Tally,
    ack: bool,
) -> None:
    body, headers = signer.signed(call_id)
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            done = time.monotonic_ns()
            if 200 <= resp.status < 300:
                tally.ok += 1
                tally.latencies_us.append((done - since) // 1000)
                if ack:
                    tally.acks.append((call_id, done))
            else:
                tally.errors += 1
    except (aiohttp.ClientError, OSError, TimeoutError):
        tally.errors += 1


async def closed_loop(url: str, concurrency: int, duration: float, first_id: int) -> tuple[Tally, float]:
    signer, tally = Signer(int(time.time() * 1000)), Tally()
    ids = iter(range(first_id, sys.maxsize))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        deadline = started + duration

        async def one_connection() -> None:
            while time.monotonic() < deadline:
                await _post(session, url, signer, next(ids), time.monotonic_ns(), tally, ack=False)

        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        return tally, time.monotonic() - started


async def open_loop(url: str, rate: float, duration: float, first_id: int) -> tuple[Tally, float]:
    """Send at ``rate`` per second; latency counts from when a request was due, so a stall in
    the server shows in the figures instead of slowing the sender (no coordinated omission)."""
    signer, tally = Signer(int(time.time() * 1000)), Tally()
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        start_ns = time.monotonic_ns()
        total = round(rate * duration)  # a whole number of requests, whatever the float error
        for n in range(total):
            due_ns = start_ns + int(n * 1e9 / rate)
            delay = (due_ns - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_post(session, url, signer, first_id + n, due_ns, tally, ack=True))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return tally, (time.monotonic_ns() - start_ns) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("mode", choices=["closed", "open"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--first-id", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        if args.mode == "closed":
            tally, seconds = runner.run(closed_loop(args.url, args.concurrency, args.duration, args.first_id))
        else:
            tally, seconds = runner.run(open_loop(args.url, args.rate, args.duration, args.first_id))
    write_all(sys.stdout.fileno(), tally.to_json(seconds))


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: after uvloop has run, one write to a pipe may return having written
    only the pipe's 64 KiB (the harness then read half a JSON object), so write until done."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


if __name__ == "__main__":
    main()
