"""A whole relay on loopback for fault scenarios: Redis, listener and worker processes, a sink.

async with Deployment(tmp_path, listeners=1, workers=2) as d:
    hook = await d.subscribe()
    acked = await d.send(d.bodies(200))
    tally = await d.tally(acked, [hook], within=30)
    assert tally.lost == 0
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from relay.keys import GROUP, Keys
from relay.store.connect import connect
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.processes import RelayProcess
from tests.redis_server import PrivateRedis
from tests.sink import Received, Sink

HOOK_SECRET = "chaos-subscriber-secret"

SETTINGS = {
    "callfire_secrets": SECRET,
    "egress_allow": "127.0.0.0/8",
    "partitions": "2",
    "retry_schedule": "0.2s,0.4s,0.8s,1s,1s,1s,1s,1s",
    "delivery_timeout": "1s",
    "reclaim_idle": "2s",
    "shutdown_grace": "3s",
    "redis_timeout": "1s",
    "log_level": "info",
}


@dataclass
class Tally:
    """What a scenario reports. ``lost`` must be 0."""

    sent: int = 0
    acknowledged: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


class ChaosSink(Sink):
    """The test sink, with a random behaviour per request: failures, slowness, resets."""

    def __init__(
        self,
        *,
        fail: float = 0.0,
        slow: float = 0.0,
        reset: float = 0.0,
        delay: float = 0.0,
        max_failures: int | None = None,
    ) -> None:
        super().__init__()
        self.fail, self.slow, self.reset, self.delay = fail, slow, reset, delay
        self.max_failures = max_failures
        """A ``webhook-id`` refused (or answered slowly) this many times is then answered 200 at
        once: the failures stay random, yet every event arrives within the retry schedule."""
        self.failures: Counter[str] = Counter()
        self.rand = random.Random(11)
        self.ok: Counter[str] = Counter()
        """webhook-id -> how many times it was answered 2xx."""
        self.attempt_times: dict[str, list[float]] = {}
        self.on_ok: Callable[[int], Awaitable[None]] | None = None
        """Awaited with the number of 2xx answers so far, just before each 2xx goes out."""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = Received(request.path, headers, body, time.monotonic())
        self.received.append(received)
        msg_id = headers.get("webhook-id", "")
        self.attempt_times.setdefault(msg_id, []).append(received.at)
        roll = self.rand.random()
        if self.max_failures is not None:
            if self.failures[msg_id] >= self.max_failures:
                roll = 1.0  # the schedule's last attempts must succeed
            elif roll < self.reset + self.fail + self.slow:
                self.failures[msg_id] += 1
        if roll < self.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if roll < self.reset + self.fail:
            return web.Response(status=500)
        if self.delay or roll < self.reset + self.fail + self.slow:
            await asyncio.sleep(self.delay or 1.0)
        self.ok[msg_id] += 1
        if self.on_ok is not None:
            await self.on_ok(sum(self.ok.values()))
        return web.Response(status=200, text="ok")


class Deployment:
    def __init__(
        self,
        tmp: Path,
        *,
        listeners: int = 1,
        workers: int = 1,
        appendonly: bool = True,
        sink: ChaosSink | None = None,
        **settings: str,
    ) -> None:
        self.tmp = tmp
        self.redis_server = PrivateRedis(appendonly=appendonly)
        self.sink = sink or ChaosSink()
        self.prefix = f"c{uuid.uuid4().hex[:10]}"
        self.settings = {**SETTINGS, "key_prefix": self.prefix, **settings}
        self.keys = Keys(self.prefix, int(self.settings["partitions"]))
        self.n_listeners, self.n_workers = listeners, workers
        self.listeners: list[RelayProcess] = []
        self.workers: list[RelayProcess] = []
        self._session: aiohttp.ClientSession | None = None
        self._seq = 0

    async def __aenter__(self) -> Deployment:
        self.redis_server.start()
        self.settings["redis_url"] = self.redis_server.url
        # The deployment's own client survives the Redis restarts that scenarios cause.
        retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=20)
        self.redis = connect(self.redis_server.url, retry=retry, retry_on_error=[RedisConnectionError])
        await self.sink.start()
        self._session = aiohttp.ClientSession()
        for _ in range(self.n_listeners):
            self.add_listener()
        for _ in range(self.n_workers):
            self.add_worker()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self.listeners + self.workers:
            proc.kill()
        if self._session is not None:
            await self._session.close()
        await self.sink.close()
        await self.redis.aclose()
        self.redis_server.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The deployment's HTTP client, open from entering the deployment to leaving it."""
        if self._session is None:
            raise RuntimeError("the deployment is not running (use it as `async with`)")
        return self._session

    def _process(self, command: str, **overrides: str) -> RelayProcess:
        self._seq += 1
        settings = {**self.settings, **overrides}
        return RelayProcess(command, self.tmp / f"{command}-{self._seq}.log", **settings)

    def add_listener(self, wait_ready: bool = True, **overrides: str) -> RelayProcess:
        """Start one more ``relay serve`` (settings ``overrides``, e.g. another ``redis_url``);
        without ``wait_ready``, the caller waits for it (``proc.wait_ready``)."""
        proc = self._process("serve", **overrides).start(wait_ready=wait_ready)
        self.listeners.append(proc)
        return proc

    def add_worker(self, wait_ready: bool = True) -> RelayProcess:
        proc = self._process("work").start(wait_ready=wait_ready)
        self.workers.append(proc)
        return proc

    async def subscribe(self, path: str = "/hook", **fields: Any) -> int:
        values: dict[str, Any] = {
            "name": f"chaos {path}",
            "resource": "OutboundCall",
            "events": ["Finished"],
            "callback": self.sink.url(path),
            "secret": SecretStr(HOOK_SECRET),
        }
        values.update(fields)
        hook = await WebhookStore(self.redis, self.keys).create(
            WebhookSpec.model_validate(values), int(time.time() * 1000)
        )
        return hook.id  # workers read what was written: no wait for their views

    def bodies(self, count: int) -> list[bytes]:
        start = self._seq * 1_000_000 + int(time.time())
        return [callback_body(call_event(call_id=start + n)) for n in range(count)]

    async def send(
        self,
        bodies: list[bytes],
        concurrency: int = 16,
        give_up: float = 60.0,
        sent_at: dict[str, float] | None = None,
    ) -> dict[str, int]:
        """Post every body as CallFire would, retrying until a 2xx; digest -> events acknowledged.
        ``sent_at`` gets digest -> when (monotonic) the post that was acknowledged was sent."""
        session = self.session
        acked: dict[str, int] = {}
        gate = asyncio.Semaphore(concurrency)
        deadline = time.monotonic() + give_up

        async def one(n: int, body: bytes) -> None:
            while time.monotonic() < deadline:
                target = self.listeners[n % len(self.listeners)].base_url + "/callbacks/callfire"
                try:
                    async with gate:
                        started = time.monotonic()
                        async with session.post(target, data=body, headers=signed(body)) as resp:
                            if resp.status == 200:
                                digest = hashlib.sha256(body).hexdigest()
                                acked[digest] = body.count(b'"eventType"')
                                if sent_at is not None:
                                    sent_at[digest] = started
                                return
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.1)

        await asyncio.gather(*(one(n, body) for n, body in enumerate(bodies)))
        return acked

    async def settle(self, within: float = 20.0) -> None:
        """Wait (bounded) until the group has nothing pending and no retry is scheduled."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            busy = 0
            for p in range(self.keys.partitions):
                busy += int(await self.redis.zcard(self.keys.scheduled(p)))
                for stream in (self.keys.events(p), self.keys.deliveries(p)):
                    with contextlib.suppress(ResponseError):  # no group yet
                        busy += int((await self.redis.xpending(stream, GROUP))["pending"])
            if busy == 0:
                return
            await asyncio.sleep(0.05)

    @staticmethod
    def expected_ids(acked: dict[str, int], hooks: list[int]) -> set[str]:
        return {
            f"msg_{digest[:32]}_{index}_{hook}"
            for digest, events in acked.items()
            for index in range(events)
            for hook in hooks
        }

    async def tally(self, acked: dict[str, int], hooks: list[int], sent: int, within: float = 30.0) -> Tally:
        """Wait (bounded) until every expected delivery arrived, then count."""
        expected = self.expected_ids(acked, hooks)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and not expected <= set(self.sink.ok):
            await asyncio.sleep(0.05)
        await self.settle()  # reclaimed entries (duplicates) land before counting
        delivered = expected & set(self.sink.ok)
        return Tally(
            sent=sent,
            acknowledged=len(acked),
            expected=len(expected),
            delivered=len(delivered),
            lost=len(expected - delivered),
            duplicates=sum(self.sink.ok.values()) - len(self.sink.ok),
        )
