"""A webhook receiver for tests: a real aiohttp server on 127.0.0.1 that records every request
and answers as it is told (statuses, delays, Retry-After), plus the checks a receiver makes.

    sink = Sink(); await sink.start()
    sink.script("/a", Reply(503, retry_after="1"), Reply(200))   # then the default: 200
    sink.always("/slow", Reply(200, delay=3))
    got = await sink.wait_for(2, path="/a")
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook as StandardWebhook


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = "ok"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    """Names lowercased."""
    body: bytes
    at: float
    """time.monotonic() on arrival (before any delay)."""

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers["webhook-id"]


class Sink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, deque[Reply]] = {}
        self._defaults: dict[str, Reply] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.active = 0
        self.most_active = 0
        """The most requests it was answering at once."""

    async def start(self) -> Sink:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with these, in order, then with the default."""
        self._scripts.setdefault(path, deque()).extend(replies)

    def always(self, path: str, reply: Reply) -> None:
        self._defaults[path] = reply

    def at(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received if path is None or r.path == path]

    async def wait_for(self, count: int, path: str | None = None, within: float = 5.0) -> list[Received]:
        """The first ``count`` requests (to ``path``), polling until they came (at most ``within`` s)."""
        deadline = time.monotonic() + within
        while len(self.at(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.at(path))} of {count} requests to {path} in {within}s")
            await asyncio.sleep(0.01)
        return self.at(path)[:count]

    async def _handle(self, request: web.Request) -> web.Response:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            return await self._answer(request)
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(request.path, headers, body, time.monotonic()))
        queue = self._scripts.get(request.path)
        reply = queue.popleft() if queue else self._defaults.get(request.path, Reply())
        if reply.delay:
            await asyncio.sleep(reply.delay)
        out = dict(reply.headers)
        if reply.retry_after is not None:
            out["Retry-After"] = reply.retry_after
        return web.Response(status=reply.status, headers=out, text=reply.text)


def callfire_valid(received: Received, secret: str) -> bool:
    """What a receiver written for CallFire checks: base64 HMAC-SHA1 of the raw body."""
    expected = base64.b64encode(hmac.digest(secret.encode(), received.body, hashlib.sha1)).decode()
    return hmac.compare_digest(expected, received.headers.get("x-callfire-signature", ""))


def standard_verified(received: Received, secret: str) -> Any:
    """The Standard Webhooks check, by the public library: a ``whsec_`` secret as the library
    takes it, a plain one as its bytes; raises
    ``standardwebhooks.webhooks.WebhookVerificationError`` when it fails."""
    key = secret if secret.startswith("whsec_") else secret.encode()
    return StandardWebhook(key).verify(received.body, received.headers)
