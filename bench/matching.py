"""Matching measured directly: ``WebhookView.matching`` over 10 to 10,000 webhooks, in-process.

The view is loaded from a table held in memory (no Redis), the same way a worker loads it; every
size has the same few webhooks matching the benchmark's event, the rest on other resources.

With filters: ``FILTERED`` webhooks on the event's resource and event, each with ``FILTER``
(which holds for the event), alone and among 10,000; the two are timed in alternation in the
same run, and their ratio is the figure (target: flat).
"""

from __future__ import annotations

import dataclasses
import time
import timeit
from typing import Any, cast

from bench.preload import event_template
from bench.results import Row, below
from bench.stats import Figure
from bench.subscriptions import FILTER, specs
from relay.events import StreamEvent
from relay.store.webhooks import WebhookStore
from relay.webhooks.matching import wants
from relay.webhooks.model import Webhook, stored
from relay.webhooks.view import WebhookView

SECTION = "matching (in-process)"
FILTERED = 10


class _Table:
    """What ``WebhookView`` reads from a store, held in memory."""

    def __init__(self, webhooks: list[Webhook]) -> None:
        self.table = {w.id: w.to_storage() for w in webhooks}

    async def version(self) -> int:
        return 1

    async def snapshot(self) -> tuple[int, dict[int, bytes]]:
        return 1, self.table


def webhooks(total: int, matching: int, now_ms: int, filter_: dict[str, Any] | None = None) -> list[Webhook]:
    found = specs("http://127.0.0.1:9", matching, total - matching, filter_)
    return [stored(spec, webhook_id=n + 1, created_at=now_ms, now_ms=now_ms) for n, spec in enumerate(found)]


async def loaded_view(
    total: int, matching: int, now_ms: int, filter_: dict[str, Any] | None = None
) -> WebhookView:
    view = WebhookView(cast(WebhookStore, _Table(webhooks(total, matching, now_ms, filter_))))
    await view.refresh()
    return view


def event_fields(now_ms: int) -> dict[bytes, bytes]:
    """A stream entry's fields as the worker reads them (the event with call id 1)."""
    return {name.encode(): value for name, value in event_template(now_ms).fields(1).items()}


def per_call_us(fn: Any, calls: int, runs: int = 5, tries: int = 5) -> list[float]:
    """Microseconds per call, for each of ``runs`` runs; a run is the best of ``tries`` timings
    of ``calls`` calls (as timeit advises: slower timings measure the machine, not the code)."""
    return [min(timeit.repeat(fn, number=calls, repeat=tries)) / calls * 1e6 for _ in range(runs)]


def selected(view: WebhookView, event: StreamEvent, now_ms: int) -> list[Webhook]:
    """What the worker delivers an event to (``Dispatcher.plan``): the view's candidates, then
    ``wants`` (resource, event, filter) on each."""
    return [w for w in view.matching(event.resource, event.event_key, now_ms) if wants(w, event)]


async def filtered(total: int, now_ms: int, runs: int = 5) -> tuple[Figure, Figure, Figure]:
    """Per call, ``FILTERED`` filtered webhooks alone, then among ``total``; and their ratio.
    Each call has the event's JSON as a new object, as each new event has: its decoding (kept
    for the event's other webhooks) is in the figure."""
    template = StreamEvent.from_fields(event_fields(now_ms))
    alone = await loaded_view(FILTERED, FILTERED, now_ms, FILTER)
    crowd = await loaded_view(total, FILTERED, now_ms, FILTER)
    assert len(selected(alone, template, now_ms)) == len(selected(crowd, template, now_ms)) == FILTERED

    def call(view: WebhookView) -> int:
        event = dataclasses.replace(template, json=bytes(bytearray(template.json)))
        return len(selected(view, event, now_ms))

    a_runs: list[float] = []
    c_runs: list[float] = []
    for _ in range(runs):  # alternated, so both see the same machine
        a_runs += per_call_us(lambda: call(alone), 2_000, runs=1)
        c_runs += per_call_us(lambda: call(crowd), 2_000, runs=1)
    ratio = Figure.of([c / a for a, c in zip(a_runs, c_runs, strict=True)])
    return Figure.of(a_runs), Figure.of(c_runs), ratio


async def run_matching(sizes: tuple[int, ...], matching: int) -> tuple[list[Row], dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    fields = event_fields(now_ms)
    curve: dict[int, dict[str, Figure]] = {}
    for total in sizes:
        view = await loaded_view(total, matching, now_ms)
        assert len(view.matching("OutboundCall", "finished", now_ms)) == matching

        def plan(view: WebhookView = view) -> int:
            return len(selected(view, StreamEvent.from_fields(fields), now_ms))

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
    alone, crowd, ratio = await filtered(max(sizes), now_ms)
    label = f"{FILTERED} webhooks with a filter"
    rows += [
        Row(SECTION, f"matching + wants, {label} alone", "us", alone),
        Row(SECTION, f"matching + wants, {label} among {max(sizes):,}", "us", crowd),
        Row(
            SECTION,
            f"matching with filters, {max(sizes):,} / {FILTERED}",
            "x",
            ratio,
            "< 1.5 (flat)",
            below(ratio, 1.5),
        ),
    ]
    data = {
        "filtered": {"alone": alone.to_json(), "crowd": crowd.to_json(), "ratio": ratio.to_json()},
        "matching_webhooks": matching,
        "curve": {str(total): {k: f.to_json() for k, f in figs.items()} for total, figs in curve.items()},
    }
    return rows, data
