"""POST /v2/webhooks/dry-run: counts and samples retained events, delivers nothing, refuses bad
input naming the field."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from relay.keys import Keys
from relay.store.connect import RedisClient
from tests.api_client import AUTH
from tests.callbacks import call_event, stream_event

DRY_RUN = "/v2/webhooks/dry-run"
ANSWERED = {"resource.finalCallResult": {"$in": ["LA", "AM"]}}
CALLS = {"resource": "OutboundCall", "events": ["finished"]}


async def publish(
    redis: RedisClient, keys: Keys, results: list[str], first_id: int = 1, gap: float = 0
) -> None:
    """Call events with these results, spread over the partitions, as the listener appends them
    (``gap`` seconds apart: entries of two partitions in one ms have no order between them)."""
    for n, result in enumerate(results):
        await asyncio.sleep(gap)
        event = call_event(call_id=first_id + n)
        event["resource"]["finalCallResult"] = result
        fields = stream_event(event, received_at=int(time.time() * 1000)).to_fields()
        await redis.xadd(keys.events(n % keys.partitions), fields)  # type: ignore[arg-type]


async def dry_run(client: Any, status: int = 200, **body: Any) -> Any:
    resp = await client.post(DRY_RUN, json=body, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_answers_count_scanned_and_the_first_20(client: Any, redis: RedisClient, keys: Keys) -> None:
    """totalCount is every retained event the webhook would get; items the first 20, oldest first."""
    await publish(redis, keys, ["LA", "AM", "BUSY"] * 10, gap=0.002)
    answer = await dry_run(client, webhook={**CALLS, "filter": ANSWERED}, since=0)
    assert (answer["totalCount"], answer["scanned"], answer["truncated"]) == (20, 30, False)
    ids = [item["body"]["events"][0]["resource"]["id"] for item in answer["items"]]
    assert ids == [n for n in range(1, 31) if n % 3][:20]
    assert [i["entryId"] for i in answer["items"]] == sorted((i["entryId"] for i in answer["items"]), key=_id)


def _id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def test_items_carry_the_body_after_fields(client: Any, redis: RedisClient, keys: Keys) -> None:
    """Each item's body is trimmed by the webhook's fields, its ids exact past 2^53."""
    await publish(redis, keys, ["LA"], first_id=7420017300281076001)
    webhook = {**CALLS, "fields": "events(resource(id))"}
    resp = await client.post(DRY_RUN, json={"webhook": webhook, "since": 0}, headers=AUTH)
    assert b'"body":{"events":[{"resource":{"id":7420017300281076001}}]}' in await resp.read()


async def test_since_leaves_older_events_out(client: Any, redis: RedisClient, keys: Keys) -> None:
    """Only the events appended at or after ``since`` are scanned."""
    await publish(redis, keys, ["LA"] * 3)
    await asyncio.sleep(0.01)
    since = int(time.time() * 1000)
    await asyncio.sleep(0.01)
    await publish(redis, keys, ["AM"] * 2)
    answer = await dry_run(client, webhook=CALLS, since=since)
    assert (answer["scanned"], answer["totalCount"]) == (2, 2)


async def test_nothing_is_delivered_nor_read(client: Any, redis: RedisClient, keys: Keys) -> None:
    """After a dry run the streams, their group and the deliveries streams are as they were."""
    await publish(redis, keys, ["LA"] * 4)
    await redis.xgroup_create(keys.events(0), "relay-workers", id="0")

    async def state() -> Any:
        streams = [keys.events(p) for p in range(keys.partitions)]
        streams += [keys.deliveries(p) for p in range(keys.partitions)]
        return [await redis.xlen(s) for s in streams], await redis.xinfo_groups(keys.events(0))

    before = await state()
    assert (await dry_run(client, webhook=CALLS, since=0))["totalCount"] == 4
    assert await state() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "webhook: Field required"),
        ({"webhook": CALLS}, "since: Field required"),
        ({"webhook": CALLS, "since": "0"}, "since:"),
        ({"webhook": CALLS, "since": -1}, "since:"),
        ({"webhook": [], "since": 0}, "webhook: must be a JSON object"),
        ({"webhook": {**CALLS, "resource": "Nope"}, "since": 0}, "webhook.resource: unknown resource"),
        ({"webhook": {**CALLS, "events": ["Started"]}, "since": 0}, "webhook.events: 'Started' is not"),
        ({"webhook": {**CALLS, "fields": "a(("}, "since": 0}, "webhook.fields:"),
        ({"webhook": {**CALLS, "callback": "http://x/"}, "since": 0}, "webhook.callback: Extra inputs"),
        (
            {"webhook": {**CALLS, "filter": {"resource.finalCallResult": {"$in": "LA"}}}, "since": 0},
            "webhook.filter.resource.finalCallResult.$in: must be a non-empty list",
        ),
        ({"webhook": {**CALLS, "filter": {"$or": [{"a": 1}, 2]}}, "since": 0}, "webhook.filter.$or.1:"),
    ],
)
async def test_bad_input_is_400_naming_the_field(client: Any, body: dict[str, Any], message: str) -> None:
    """A body that would be refused on create is refused here too, the message naming the field."""
    answer = await dry_run(client, 400, **body)
    assert answer["message"].startswith(message), answer["message"]


async def test_the_path_is_not_taken_for_a_webhook_id(client: Any) -> None:
    """GET /v2/webhooks/dry-run is 405 allowing POST, not a lookup of webhook "dry-run"."""
    resp = await client.get(DRY_RUN, headers=AUTH)
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
