"""The delivery ceilings: the least a forwarder can do, run in a process of its own.

``python -m bench.minimal_loop --redis-url U --prefix P --partitions N --sink URL [--client C]``:
XREADGROUP COUNT 100 over every partition's events stream -> POST each event's JSON, 64 in
flight -> acknowledge. No matching, no envelope, no signatures, no retries, no attempt records:
what is left when all the relay's work is taken away. Two clients (``--client``):

- ``aiohttp`` (the default): one aiohttp ``ClientSession``; XACK in a pipeline every 100 acks or
  10 ms.
- ``relay``: like for like with a worker's own plumbing: the relay's HTTP client
  (``relay.delivery.client.Sender``, the pool of ``relay.delivery.http1``) and the relay's
  batched acknowledgements (``relay.delivery.acks.Completer``, its COMPLETE script per
  partition, with no retries and no attempt records to carry). What a worker adds on top of it
  is its own work: matching, filters, the envelope, both signatures, attempt records, rate
  limits and breakers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relay.delivery.acks import Completer, Completion
from relay.delivery.client import Sender
from relay.delivery.message import OutboundRequest
from relay.delivery.retry import DueTimes
from relay.egress import EgressAllow
from relay.keys import GROUP, Keys
from relay.store.attempts import Attempts
from relay.store.streams import Entry, Streams

READ_COUNT = 100
IN_FLIGHT = 64
ACK_BATCH = 100
ACK_EVERY = 0.01
CLIENTS = ("aiohttp", "relay")
HEADERS = {"Content-Type": "application/json"}


class MinimalLoop:
    def __init__(self, redis: Redis, keys: Keys, sink: str) -> None:
        self.redis = redis
        self.keys = keys
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
            async with session.post(self.sink, data=body, headers=HEADERS) as resp:
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

    async def read_forever(self, start: Any) -> None:
        """Read, and ``start`` one task per entry once a slot is free (64 in flight)."""
        tasks: set[asyncio.Task[None]] = set()
        print("ready", flush=True)
        while True:
            found: Any = await self.redis.xreadgroup(
                GROUP, "minimal", self.streams, count=READ_COUNT, block=500
            )
            for stream, entries in found or ():
                for entry_id, fields in entries:
                    await self.slots.acquire()
                    task = asyncio.create_task(start(stream, entry_id, fields))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

    async def run(self) -> None:
        await self.ensure_groups()
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:
            acker = asyncio.create_task(self.ack_forever())
            try:
                await self.read_forever(lambda s, i, f: self.post(session, s, i, f[b"json"]))
            finally:
                acker.cancel()


class RelayPlumbingLoop(MinimalLoop):
    """The same loop on the worker's own HTTP client and acknowledgements."""

    def __init__(self, redis: Redis, keys: Keys, sink: str) -> None:
        super().__init__(redis, keys, sink)
        self.partition_of = {stream.encode(): p for p, stream in enumerate(keys.all_events())}
        self.sender = Sender(allow=EgressAllow.parse("127.0.0.0/8"), timeout=10.0, max_connections=IN_FLIGHT)
        attempts = Attempts(redis=redis, keys=keys, kept=0)
        self.completer = Completer(
            redis=redis, streams=Streams(redis, keys), attempts=attempts, due=DueTimes()
        )

    async def send(self, stream: bytes, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            request = OutboundRequest(
                url=self.sink, body=fields[b"json"], headers=dict(HEADERS), verify_ssl=True
            )
            result = await self.sender.send(request)
            if result.status is not None and 200 <= result.status < 300:
                entry = Entry(partition=self.partition_of[stream], replay=False, id=entry_id, fields=fields)
                self.completer.complete(Completion(entry))
        finally:
            self.slots.release()

    async def run(self) -> None:
        await self.ensure_groups()
        await self.sender.start()
        await self.completer.start()
        try:
            await self.read_forever(self.send)
        finally:
            await self.completer.stop(grace=1.0)
            await self.sender.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.minimal_loop")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    redis = Redis.from_url(args.redis_url)
    kind = RelayPlumbingLoop if args.client == "relay" else MinimalLoop
    loop = kind(redis, Keys(args.prefix, args.partitions), args.sink)
    with asyncio.Runner(loop_factory=factory) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(loop.run())


if __name__ == "__main__":
    main()
