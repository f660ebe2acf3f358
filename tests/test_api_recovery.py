"""POST /v2/webhooks/{id}/recover and /backfill: dead letters in a window replayed; retained
events delivered to one new webhook, matching ones only, each once, with stable webhook-ids."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.delivery import DELIVERY
from relay.delivery.message import Delivery
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.api_client import AUTH, create
from tests.callbacks import call_event, callback_body, signed
from tests.delivery_harness import FAST
from tests.letters import seed, stored_event
from tests.sink import Sink


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.close()


async def post(client: Any, path: str, body: Any, status: int) -> Any:
    resp = await client.post(path, json=body, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def queued_for(redis: RedisClient, keys: Keys) -> list[str]:
    """The webhook-ids of the deliveries waiting on every partition's deliveries stream."""
    out = []
    for partition in range(keys.partitions):
        for _, fields in await redis.xrange(keys.deliveries(partition)):
            out.append(Delivery.from_fields(fields).id)
    return sorted(out)


async def test_recover_replays_the_letters_in_its_window(client: Any, redis: RedisClient, keys: Keys) -> None:
    """Recover replays that webhook's letters written in the window, not those outside it, not
    another webhook's."""
    hook = await create(client)
    now = int(time.time() * 1000)
    ids = await seed(
        redis, keys, (hook, "exhausted", now - 20_000), (hook, "exhausted", now - 10_000),
        (hook, "refused", now), (hook + 1, "exhausted", now),
    )  # fmt: skip
    result = await post(client, f"/v2/webhooks/{hook}/recover", {"since": now - 12_000}, 200)
    assert result == {"replayed": 2}
    assert await queued_for(redis, keys) == sorted(stored_event(n).delivery_id(hook) for n in (1, 2))
    left = await (await client.get("/v2/dead-letters", headers=AUTH)).json()
    assert sorted(i["id"] for i in left["items"]) == sorted([ids[0], ids[3]])


async def test_recover_until_closes_the_window(client: Any, redis: RedisClient, keys: Keys) -> None:
    """With until, letters written after it stay."""
    hook = await create(client)
    now = int(time.time() * 1000)
    await seed(redis, keys, (hook, "exhausted", now - 20_000), (hook, "exhausted", now))
    result = await post(client, f"/v2/webhooks/{hook}/recover", {"since": 0, "until": now - 1000}, 200)
    assert result == {"replayed": 1}
    assert await queued_for(redis, keys) == [stored_event(0).delivery_id(hook)]


async def test_backfill_reaches_a_new_webhook_only_with_matching_events_once(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """A webhook created after its events gets, by backfill, the retained events it matches, each
    once, with the webhook-id they have for it; the webhook that had them live gets nothing more."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    early = await create(client, name="early", callback=sink.url("/early"))
    await client.app[DELIVERY].view.refresh()
    since = int(time.time() * 1000)
    for event in (call_event("Finished", call_id=1), call_event("Started", call_id=2), call_event(call_id=3)):
        body = callback_body(event)
        assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
    await sink.wait_for(2, "/early")
    late = await create(client, name="late", callback=sink.url("/late"))
    await client.app[DELIVERY].view.refresh()
    result = await post(client, f"/v2/webhooks/{late}/backfill", {"since": since}, 202)
    assert result == {"queued": 2}
    got = await sink.wait_for(2, "/late")
    await asyncio.sleep(0.3)  # anything more would have come by now
    assert len(sink.at("/late")) == 2 and len(sink.at("/early")) == 2
    assert sorted(r.json()["events"][0]["resource"]["id"] for r in got) == [1, 3]
    early_ids = {r.delivery_id.removesuffix(f"_{early}") for r in sink.at("/early")}
    assert {r.delivery_id.removesuffix(f"_{late}") for r in got} == early_ids
    again = await post(client, f"/v2/webhooks/{late}/backfill", {"since": since}, 202)
    assert again == {"queued": 2}
    repeated = await sink.wait_for(4, "/late")
    assert sorted(r.delivery_id for r in repeated[2:]) == sorted(r.delivery_id for r in got)


async def test_backfill_older_than_retention_is_400_with_the_oldest_time(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """A since older than RELAY_STREAM_RETENTION allows is 400, saying the oldest retained time."""
    client = await make_client(make_settings(stream_retention="60s"), api=True)
    hook = await create(client)
    since = int(time.time() * 1000) - 120_000
    error = await post(client, f"/v2/webhooks/{hook}/backfill", {"since": since}, 400)
    assert error["message"].startswith("since:") and "oldest retained time is" in error["message"]


async def test_backfill_of_a_disabled_webhook_is_409(client: Any) -> None:
    """A disabled webhook cannot be backfilled: it would only dead-letter everything."""
    hook = await create(client, enabled=False)
    await post(client, f"/v2/webhooks/{hook}/backfill", {"since": int(time.time() * 1000)}, 409)


@pytest.mark.parametrize("action", ["recover", "backfill"])
async def test_unknown_webhook_is_404(client: Any, action: str) -> None:
    """Recover and backfill of a webhook that does not exist: 404."""
    await post(client, f"/v2/webhooks/424242/{action}", {"since": int(time.time() * 1000)}, 404)


@pytest.mark.parametrize(
    ("action", "body", "named"),
    [
        ("recover", {}, "since:"),
        ("recover", {"since": "5"}, "since:"),
        ("recover", {"since": 5.5}, "since:"),
        ("recover", {"since": 10, "until": 5}, "until: must not be earlier than since"),
        ("recover", {"since": 1, "ids": []}, "ids:"),
        ("backfill", {}, "since:"),
        ("backfill", {"since": "5"}, "since:"),
        ("backfill", {"since": -1}, "since:"),
    ],
)
async def test_bad_bodies_are_400(client: Any, action: str, body: dict[str, Any], named: str) -> None:
    """Each bad recover or backfill body is 400 naming the field."""
    hook = await create(client)
    error = await post(client, f"/v2/webhooks/{hook}/{action}", body, 400)
    assert named in error["message"]


async def test_backfill_honours_the_webhooks_filter(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """Backfill queues only the retained events the webhook's filter holds for."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    since = int(time.time() * 1000)
    for n, result in enumerate(["LA", "BUSY", "AM"]):
        event = call_event(call_id=10 + n)
        event["resource"]["finalCallResult"] = result
        body = callback_body(event)
        assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
    answered = {"resource.finalCallResult": {"$in": ["LA", "AM"]}}
    late = await create(client, name="answered", callback=sink.url("/answered"), filter=answered)
    await client.app[DELIVERY].view.refresh()
    result = await post(client, f"/v2/webhooks/{late}/backfill", {"since": since}, 202)
    assert result == {"queued": 2}
    # The live worker may also reach the newest event once the webhook exists (read-your-writes):
    # that repeat carries the same webhook-id, so count distinct calls, and never the BUSY one.
    deadline = time.monotonic() + 5
    while len(calls := {r.json()["events"][0]["resource"]["id"] for r in sink.at("/answered")}) < 2:
        assert time.monotonic() < deadline, f"only {calls} reached the webhook"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # let anything wrongly queued arrive before judging
    assert {r.json()["events"][0]["resource"]["id"] for r in sink.at("/answered")} == {10, 12}
