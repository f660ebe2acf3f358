"""The console's reading pages: the overview, and the webhooks with their health."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from relay.console.health import Health, health_of, masked_url
from relay.console.rates import attempt_rate
from relay.console.state import CONSOLE, Console
from relay.store.progress import Progress, read_progress
from relay.webhooks.model import Webhook

RATE_WINDOW_MS = 10_000
"""Deliveries per second are averaged over this much of the recent past."""
LETTERS_COUNTED = 10_000
"""Dead letters read to count them by webhook; past that the overview says it counted a part."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookRow:
    """One webhook as the console shows it: never its secret, its callback URL masked."""

    id: int
    name: str
    resource: str
    events: str
    callback: str
    enabled: bool
    live: bool
    health: Health
    rate: float


def now_ms() -> int:
    return int(time.time() * 1000)


def row_of(webhook: Webhook, raws: list[bytes], *, now: int, kept: int) -> WebhookRow:
    records: list[dict[str, Any]] = [orjson.loads(raw) for raw in raws]
    return WebhookRow(
        id=webhook.id,
        name=webhook.name or "",
        resource=webhook.resource,
        events=", ".join(webhook.events),
        callback=masked_url(webhook.callback),
        enabled=webhook.enabled,
        live=webhook.live(now),
        health=health_of(records, kept),
        rate=attempt_rate((int(r["at"]) for r in records), now_ms=now, window_ms=RATE_WINDOW_MS, kept=kept),
    )


async def webhook_rows(console: Console) -> list[WebhookRow]:
    """Every webhook, by id, with the health its attempt log shows."""
    webhooks = await console.webhooks.all()
    kept = console.settings.attempts_kept
    logs = await console.attempts.newest([w.id for w in webhooks], kept)
    now = now_ms()
    return [row_of(w, logs[w.id], now=now, kept=kept) for w in webhooks]


async def callbacks_rate(console: Console) -> tuple[Progress, float | None]:
    """The pipeline's progress, and events appended per second (None on Redis < 7). The first
    view in a minute samples twice, ``min_gap`` apart."""
    progress = await read_progress(console.redis, console.keys)
    if progress.events_added is None:
        return progress, None
    sampler = console.sampler
    if sampler.needs_second_sample(time.monotonic()):
        sampler.add(time.monotonic(), progress.events_added)
        await asyncio.sleep(sampler.min_gap)
        progress = await read_progress(console.redis, console.keys)
    if progress.events_added is None:  # pragma: no cover - Redis replaced by an older one
        return progress, None
    return progress, sampler.add(time.monotonic(), progress.events_added)


async def letters_by_webhook(console: Console) -> tuple[int, Counter[int | None], int]:
    """All dead letters, and how many of each webhook among the newest ``LETTERS_COUNTED``."""
    total = await console.dead_letters.count()
    counts: Counter[int | None] = Counter()
    counted = 0
    async for letter in console.dead_letters.scan():
        counts[letter.webhook_id] += 1
        counted += 1
        if counted >= LETTERS_COUNTED:
            break
    return total, counts, counted


async def overview(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    (progress, rate), rows, (letters, by_webhook, counted) = await asyncio.gather(
        callbacks_rate(console), webhook_rows(console), letters_by_webhook(console)
    )
    oldest = progress.oldest_unfinished_ms
    names = {row.id: row.name for row in rows}
    return console.render(
        request,
        "overview.html",
        callbacks_rate=rate,
        deliveries_rate=sum(row.rate for row in rows),
        lag_seconds=max(0.0, (now_ms() - oldest) / 1000) if oldest is not None else 0.0,
        progress=progress,
        letters=letters,
        counted=counted,
        by_webhook=[(wid, names.get(wid or 0, ""), n) for wid, n in by_webhook.most_common()],
        failing=[row for row in rows if row.health.state == "failing"],
        webhooks=len(rows),
        kept=console.settings.attempts_kept,
    )


async def webhooks(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    rows = await webhook_rows(console)
    return console.render(request, "webhooks.html", rows=rows, kept=console.settings.attempts_kept)
