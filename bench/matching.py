"""Matching measured directly: ``WebhookView.matching`` over 10 to 10,000 webhooks, in-process.

The view is loaded from a table held in memory (no Redis), the same way a worker loads it; every
size has the same few webhooks matching the benchmark's event, the rest on other resources.
"""

from __future__ import annotations

import time
import timeit
from typing import Any, cast

from bench.preload import event_template
from bench.results import Row, below
from bench.stats import Figure
from bench.subscriptions import specs
from relay.events import StreamEvent
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook, stored
from relay.webhooks.view import WebhookView

SECTION = "matching (in-process)"


class _Table:
    """What ``WebhookView`` reads from a store, held in memory."""

    def __init__(self, webhooks: list[Webhook]) -> None:
        self.table = {w.id: w.to_storage() for w in webhooks}

    async def version(self) -> int:
        return 1

    async def snapshot(self) -> tuple[int, dict[int, bytes]]:
        return 1, self.table


def webhooks(total: int, matching: int, now_ms: int) -> list[Webhook]:
    found = specs("http://127.0.0.1:9", matching, total - matching)
    return [stored(spec, webhook_id=n + 1, created_at=now_ms, now_ms=now_ms) for n, spec in enumerate(found)]


async def loaded_view(total: int, matching: int, now_ms: int) -> WebhookView:
    view = WebhookView(cast(WebhookStore, _Table(webhooks(total, matching, now_ms))))
    await view.refresh()
    return view


def event_fields(now_ms: int) -> dict[bytes, bytes]:
    head, tail, others = event_template(now_ms)
    fields = {str(others[i]).encode(): str(others[i + 1]).encode() for i in range(0, len(others), 2)}
    fields[b"callback"] = b"0" * 64
    fields[b"json"] = head + b"1" + tail
    return fields


def per_call_us(fn: Any, calls: int, runs: int = 5, tries: int = 5) -> list[float]:
    """Microseconds per call, for each of ``runs`` runs; a run is the best of ``tries`` timings
    of ``calls`` calls (as timeit advises: slower timings measure the machine, not the code)."""
    return [min(timeit.repeat(fn, number=calls, repeat=tries)) / calls * 1e6 for _ in range(runs)]


async def run_matching(sizes: tuple[int, ...], matching: int) -> tuple[list[Row], dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    fields = event_fields(now_ms)
    curve: dict[int, dict[str, Figure]] = {}
    for total in sizes:
        view = await loaded_view(total, matching, now_ms)
        assert len(view.matching("OutboundCall", "finished", now_ms)) == matching

        def plan(view: WebhookView = view) -> int:
            event = StreamEvent.from_fields(fields)
            return len(view.matching(event.resource, event.event_key, now_ms))

        curve[total] = {
            "matching": Figure.of(
                per_call_us(lambda v=view: v.matching("OutboundCall", "finished", now_ms), 4_000)
            ),
            "plan": Figure.of(per_call_us(plan, 4_000)),
        }
    rows = [
        Row(SECTION, f"WebhookView.matching, {total:,} webhooks", "us", figs["matching"])
        for total, figs in curve.items()
    ]
    rows += [
        Row(SECTION, f"parse entry + match, {total:,} webhooks", "us", figs["plan"])
        for total, figs in curve.items()
    ]
    low, high = curve[min(sizes)]["matching"], curve[max(sizes)]["matching"]
    growth = Figure.of([h / lo for h, lo in zip(high.runs, low.runs, strict=True)])
    rows.append(
        Row(
            SECTION,
            f"matching, {max(sizes):,} / {min(sizes):,} webhooks",
            "x",
            growth,
            "< 1.5 (flat)",
            below(growth, 1.5),
        )
    )
    data = {
        "matching_webhooks": matching,
        "curve": {str(total): {k: f.to_json() for k, f in figs.items()} for total, figs in curve.items()},
    }
    return rows, data
