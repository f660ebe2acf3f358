"""The live tail: delivery attempts as they are recorded, pushed to the page as server-sent events.

The page itself lists the newest attempts (it reads without JavaScript); ``console.js`` then
opens ``/console/tail/stream?since=<ms>`` and adds each new attempt as it comes. The stream
polls the attempt logs of every webhook once a ``TICK`` (one pipelined read) and sends what is
newer than what it sent before; a comment line every ``KEEPALIVE`` keeps proxies from closing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from relay.console.state import CONSOLE, Console
from relay.webhooks.model import Webhook
from relay.webhooks.view import WebhookView

TICK = 1.0
KEEPALIVE = 15.0
PER_WEBHOOK = 20
"""Newest records read of each log per tick: more new ones than this in a tick are skipped."""
SHOWN = 50


def fresh(records: Sequence[bytes], last: bytes | None, since_ms: int) -> list[bytes]:
    """The records (newest first, as stored) that came after ``last``, oldest first; before any
    was sent, those stamped after ``since_ms``. Pure."""
    if last is None:
        new = [r for r in records if int(orjson.loads(r)["at"]) > since_ms]
    else:
        new = list(records[: records.index(last)] if last in records else records)
    return new[::-1]


def event_of(webhook: Webhook | None, webhook_id: int, raw: bytes) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(raw)
    return {**record, "webhookId": webhook_id, "webhookName": (webhook.name or "") if webhook else ""}


async def newest(console: Console, count: int) -> list[dict[str, Any]]:
    """The ``count`` newest attempts of every webhook together, newest first."""
    webhooks = {w.id: w for w in await console.webhooks.all()}
    logs = await console.attempts.newest(list(webhooks), min(count, console.settings.attempts_kept))
    rows = [event_of(webhooks[wid], wid, raw) for wid, raws in logs.items() for raw in raws]
    return heapq.nlargest(count, rows, key=lambda r: int(r["at"]))


async def page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    rows = await newest(console, SHOWN)
    since = max((int(r["at"]) for r in rows), default=0)
    return console.render(request, "tail.html", rows=rows, since=since)


async def stream(request: web.Request) -> web.StreamResponse:
    """``text/event-stream`` of ``attempt`` events, each one attempt's record as JSON."""
    console = request.app[CONSOLE]
    since_text = request.query.get("since", "0")
    since = int(since_text) if since_text.isdigit() else 0
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    view = WebhookView(console.webhooks, poll_interval=TICK)
    await view.start()
    try:
        await _pump(console, view, response, since)
    except ConnectionResetError:  # the page went away
        pass
    finally:
        await view.stop()
    return response


async def _pump(console: Console, view: WebhookView, response: web.StreamResponse, since: int) -> None:
    last: dict[int, bytes | None] = {}
    idle = 0.0
    count = min(PER_WEBHOOK, console.settings.attempts_kept)
    while not console.stopping.is_set():
        webhooks = {w.id: w for w in view.all()}
        logs = await console.attempts.newest(list(webhooks), count)
        sent = False
        for webhook_id, records in logs.items():
            for raw in fresh(records, last.get(webhook_id), since):
                data = orjson.dumps(event_of(webhooks.get(webhook_id), webhook_id, raw))
                await response.write(b"event: attempt\ndata: " + data + b"\n\n")
                sent = True
            if records:
                last[webhook_id] = records[0]
        idle = 0.0 if sent else idle + TICK
        if idle >= KEEPALIVE:
            await response.write(b": keep-alive\n\n")
            idle = 0.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TICK):
                await console.stopping.wait()
