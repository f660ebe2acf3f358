"""The delivery ceiling: the least a forwarder can do, run in a process of its own.

``python -m bench.minimal_loop --redis-url U --prefix P --partitions N --sink URL``: XREADGROUP
COUNT 100 over every partition's events stream -> POST each event's JSON through one
ClientSession, 64 in flight -> XACK in batches. No matching, no envelope, no signatures, no
retries: what is left when all the relay's work is taken away.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.keys import GROUP, Keys

READ_COUNT = 100
IN_FLIGHT = 64
ACK_BATCH = 100
ACK_EVERY = 0.01


class MinimalLoop:
    def __init__(self, redis: Redis, keys: Keys, sink: str) -> None:
        self.redis = redis
        self.streams: dict[Any, Any] = {name: ">" for name in keys.all_events()}
        self.sink = sink
        self.slots = asyncio.Semaphore(IN_FLIGHT)
        self.acks: dict[bytes, list[bytes]] = {}
        self.unacked = 0

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            with contextlib.suppress(ResponseError):  # BUSYGROUP: there already
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)

    async def post(self, session: aiohttp.ClientSession, stream: bytes, entry_id: bytes, body: bytes) -> None:
        try:
            async with session.post(
                self.sink, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
            self.acks.setdefault(stream, []).append(entry_id)
            self.unacked += 1
            if self.unacked >= ACK_BATCH:
                await self.flush_acks()
        finally:
            self.slots.release()

    async def flush_acks(self) -> None:
        acks, self.acks, self.unacked = self.acks, {}, 0
        if acks:
            pipe = self.redis.pipeline(transaction=False)
            for stream, ids in acks.items():
                pipe.xack(stream, GROUP, *ids)
            await pipe.execute()

    async def ack_forever(self) -> None:
        while True:
            await asyncio.sleep(ACK_EVERY)
            await self.flush_acks()

    async def run(self) -> None:
        await self.ensure_groups()
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector) as session:
            acker = asyncio.create_task(self.ack_forever())
            print("ready", flush=True)
            while True:
                found: Any = await self.redis.xreadgroup(
                    GROUP, "minimal", self.streams, count=READ_COUNT, block=500
                )
                for stream, entries in found or ():
                    for entry_id, fields in entries:
                        await self.slots.acquire()
                        task = asyncio.create_task(self.post(session, stream, entry_id, fields[b"json"]))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
            acker.cancel()  # pragma: no cover - the loop runs until the process is stopped


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.minimal_loop")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--sink", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    redis = Redis.from_url(args.redis_url)
    loop = MinimalLoop(redis, Keys(args.prefix, args.partitions), args.sink)
    with asyncio.Runner(loop_factory=factory) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(loop.run())


if __name__ == "__main__":
    main()
