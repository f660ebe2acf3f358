"""A relay process in a test: the app served the way `relay run` serves it (its runner, its
limits, no access log) on a free loopback port, plus traffic of every kind the operator tests need:
callbacks accepted, repeated and refused, API calls, and deliveries that succeed, retry and 410.

    async with running_relay(settings, redis, workers=1) as relay:
        await relay.post_callback(body, headers)
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from relay.delivery.setup import DELIVERY
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER, callfire_signature
from relay.store.connect import RedisClient
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.hostile import served
from tests.sink import Reply, Sink

BOUND_ID, BOUND = 2002, "bound-secret-9a1c"
PASSWORD = "api-password-77e3"
HOOK_SECRET = "hook-secret-0d5b"
MARKER = "PRIVATE-BODY-MARKER-3c9d"


@dataclass
class RunningRelay:
    base: str
    session: aiohttp.ClientSession
    app: web.Application
    sent_headers: list[str] = field(default_factory=list)
    """Every signature and credential header value this test sent."""

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        headers = kwargs.get("headers") or {}
        self.sent_headers.extend(v for k, v in headers.items() if k.lower() != "content-type")
        async with self.session.request(method, self.base + path, **kwargs) as response:
            return response.status, await response.read()

    async def post_callback(self, body: bytes, headers: dict[str, str]) -> int:
        status, _ = await self.request("POST", "/callbacks/callfire", data=body, headers=headers)
        return status


@asynccontextmanager
async def running_relay(settings: Settings, redis: RedisClient, **parts: Any) -> AsyncIterator[RunningRelay]:
    """The app for ``settings`` (``parts`` as create_app takes them), served as a process serves it."""
    async with served(settings, redis, **parts) as server, aiohttp.ClientSession() as session:
        yield RunningRelay(f"http://127.0.0.1:{server.port}", session, server.app)


def private_settings(make_settings: Any, **overrides: Any) -> Settings:
    """Settings carrying every kind of secret, with retries fast enough for a test (``overrides``
    replace any of them)."""
    values: dict[str, Any] = {
        "callfire_secrets": f"{SECRET},{BOUND_ID}:{BOUND}",
        "api_credentials": f"admin:{PASSWORD}",
        "retry_schedule": "0.1s,0.2s",
        "delivery_timeout": "2s",
        "reclaim_idle": "10s",
        "shutdown_grace": "1s",
        "log_format": "json",
        "log_level": "debug",
    }
    return make_settings(**(values | overrides))


def marked_body(webhook_id: int = 1001) -> bytes:
    event = call_event()
    event["resource"]["message"] = MARKER
    return callback_body(event, webhook_id=webhook_id)


def basic(password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}


async def subscribe(relay: RunningRelay, sink: Sink) -> None:
    """Through the API, two webhooks with a secret: /hook fails its first two requests then takes
    everything, /gone answers 410. Returns once the workers' view holds both."""
    sink.script("/hook", Reply(500), Reply(500))
    sink.always("/gone", Reply(410))
    for path in ("/hook", "/gone"):
        body = {
            "name": f"ops {path}",
            "resource": "OutboundCall",
            "events": ["Finished"],
            "callback": sink.url(path),
            "secret": HOOK_SECRET,
        }
        status, reply = await relay.request("POST", "/v2/webhooks", json=body, headers=basic())
        assert status == 201, reply
    view = relay.app[DELIVERY].view
    deadline = time.monotonic() + 5
    while len(view) < 2:
        assert time.monotonic() < deadline, "the workers never saw the new webhooks"
        await asyncio.sleep(0.01)


async def callbacks_of_every_kind(relay: RunningRelay) -> list[int]:
    """Accepted, repeated, wrongly signed, bound to another id, unsigned: their statuses."""
    body = marked_body()
    bound = marked_body(webhook_id=BOUND_ID)
    wrong = {CALLFIRE_HEADER: callfire_signature(b"not-the-secret", body)}
    return [
        await relay.post_callback(body, signed(body)),
        await relay.post_callback(body, signed(body)),
        await relay.post_callback(body, wrong),
        await relay.post_callback(bound, signed(bound, BOUND)),
        await relay.post_callback(bound, signed(bound, SECRET)),
        await relay.post_callback(body, {}),
    ]


async def api_calls(relay: RunningRelay) -> list[int]:
    """The Webhooks API read with the right password, and with a wrong one."""
    statuses = []
    for password in (PASSWORD, f"{PASSWORD}-wrong"):
        status, _ = await relay.request("GET", "/v2/webhooks", headers=basic(password))
        statuses.append(status)
    return statuses
