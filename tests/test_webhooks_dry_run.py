"""A dry run (relay/webhooks/dry_run.py): what is counted, what is shown, where the scan stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from relay.delivery.message import Prepared
from relay.events import StreamEvent
from relay.webhooks.dry_run import DryRun, candidate
from relay.webhooks.model import WebhookSpec, stored
from tests.callbacks import call_event, stream_event

ANSWERED = {"resource.finalCallResult": {"$in": ["LA", "AM"]}}


def call(result: str, call_id: int, event_type: str = "Finished") -> StreamEvent:
    event = call_event(event_type, call_id=call_id)
    event["resource"]["finalCallResult"] = result
    return stream_event(event, received_at=call_id)


def stored_fields(event: StreamEvent) -> dict[bytes, bytes]:
    return {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in event.to_fields().items()}


async def entries(events: Iterable[StreamEvent | dict[bytes, bytes]]) -> AsyncIterator[Any]:
    for n, event in enumerate(events):
        fields = event if isinstance(event, dict) else stored_fields(event)
        yield f"{n}-0".encode(), fields


def answered_run(**kwargs: Any) -> DryRun:
    webhook = candidate(resource="OutboundCall", events=("Finished",), filter_=ANSWERED, fields=None)
    return DryRun(webhook=webhook, **kwargs)


async def test_counts_matches_and_samples_the_first() -> None:
    """totalCount counts every match; items are the first ``sample_size``, in scan order."""
    events = [call("LA" if n % 3 else "BUSY", n) for n in range(30)]
    run = answered_run(sample_size=5)
    await run.scan(entries(events))
    answer = orjson.loads(orjson.dumps(run.answer()))
    assert (answer["totalCount"], answer["scanned"], answer["truncated"]) == (20, 30, False)
    assert [i["body"]["events"][0]["resource"]["id"] for i in answer["items"]] == [1, 2, 4, 5, 7]
    assert [i["receivedAt"] for i in answer["items"]] == [1, 2, 4, 5, 7]


async def test_stops_at_the_limit_and_says_truncated() -> None:
    """Past ``limit`` entries the scan stops with truncated; exactly ``limit`` is not truncated."""
    run = answered_run(limit=5)
    await run.scan(entries(call("LA", n) for n in range(7)))
    assert (run.scanned, run.total, run.truncated) == (5, 5, True)
    exact = answered_run(limit=5)
    await exact.scan(entries(call("LA", n) for n in range(5)))
    assert (exact.scanned, exact.truncated) == (5, False)


async def test_resource_event_and_filter_all_apply() -> None:
    """Another event type, another resource, or a failing filter is scanned and not counted."""
    texts = stream_event(call_event("Finished", "OutboundText"))
    run = answered_run()
    await run.scan(entries([call("LA", 1, "Started"), texts, call("AM", 2), call("BUSY", 3)]))
    assert (run.scanned, run.total) == (4, 1)


async def test_poison_entries_are_scanned_and_skipped() -> None:
    """An entry that is not an event counts as scanned only."""
    run = answered_run()
    await run.scan(entries([{b"poison": b"x"}, call("LA", 1)]))
    assert (run.scanned, run.total) == (2, 1)


async def test_body_is_the_one_the_worker_would_post() -> None:
    """Each item's body is byte for byte what delivery builds (``fields`` applied, ids exact)."""
    fields = "events(eventType,resource(id,campaignId))"
    event = call_event(call_id=7420017300281076001)
    event["resource"]["campaignId"] = 2**63 - 1
    events = [stream_event(event)]
    run = DryRun(
        webhook=candidate(resource="OutboundCall", events=("Finished",), filter_=None, fields=fields)
    )
    await run.scan(entries(events))
    spec = WebhookSpec.model_validate(
        {"resource": "OutboundCall", "events": ["Finished"], "callback": "http://x.test/", "fields": fields}
    )
    webhook = stored(spec, webhook_id=0, created_at=1, now_ms=1)
    assert run.samples[0].body == Prepared(webhook).body(events[0])
    assert b'"id":7420017300281076001,"campaignId":9223372036854775807' in orjson.dumps(run.answer())
