"""/v2/events: retained events searched (a 64-bit resource id exactly), and where each went."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.delivery import DELIVERY
from relay.settings import Settings
from tests.api_client import AUTH, create, get_json
from tests.callbacks import call_event, callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Reply, Sink

BIG_ID = 2**63 - 7
NEIGHBOUR = 2**63 - 8
"""The same float as BIG_ID: only an exact comparison tells them apart."""


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.close()


async def send(client: Any, *events: dict[str, Any]) -> None:
    body = callback_body(*events)
    resp = await client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 200, await resp.text()


async def states_until(client: Any, path: str, wanted: dict[int, str], **params: Any) -> Any:
    """GET ``path`` until each webhook's state is the wanted one (or 5 s pass); the last answer."""
    deadline = time.monotonic() + 5
    while True:
        page = await get_json(client, path, **params)
        item = page["items"][0] if page.get("items") else page
        got = {d["webhookId"]: d["state"] for d in item.get("deliveries", [])}
        if got == wanted or time.monotonic() > deadline:
            return page
        await asyncio.sleep(0.05)


async def test_search_by_64_bit_resource_id_shows_where_it_went(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """An event found by a resource id past 2**53 (not its float-equal neighbour) shows a
    delivered, a dead-letter and a not-matched webhook."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    sink.always("/dead", Reply(500))
    ok = await create(client, name="ok", callback=sink.url("/ok"))
    dead = await create(client, name="dead", callback=sink.url("/dead"))
    other = await create(client, name="other", resource="InboundCall", callback=sink.url("/other"))
    await client.app[DELIVERY].view.refresh()
    await send(client, call_event(call_id=BIG_ID))
    await send(client, call_event(call_id=NEIGHBOUR))
    wanted = {ok: "delivered", dead: "dead-letter", other: "not-matched"}
    page = await states_until(client, "/v2/events", wanted, resourceId=str(BIG_ID))
    assert page["totalCount"] == 1
    (item,) = page["items"]
    assert item["resourceId"] == str(BIG_ID) and item["resourceType"] == "OutboundCall"
    assert {d["webhookId"]: d["state"] for d in item["deliveries"]} == wanted
    by_hook = {d["webhookId"]: d for d in item["deliveries"]}
    assert [a["status"] for a in by_hook[ok]["attempts"]] == [200]
    assert [a["status"] for a in by_hook[dead]["attempts"]] == [500, 500, 500]
    assert by_hook[ok]["deliveryId"] == sink.at("/ok")[0].delivery_id
    text = await (await client.get(f"/v2/events/{item['id']}", headers=AUTH)).text()
    assert f'"id":{BIG_ID}' in text


async def test_one_event_by_id(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """GET /v2/events/{id} shows the event and where it went; webhookId narrows to one webhook,
    not-matched when it did not reach it."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    hook = await create(client, callback=sink.url("/a"))
    elsewhere = await create(client, resource="OutboundText", events=["Finished"], callback=sink.url("/b"))
    await client.app[DELIVERY].view.refresh()
    await send(client, call_event(call_id=5))
    page = await states_until(client, "/v2/events", {hook: "delivered"}, resourceId="5")
    event_id = page["items"][0]["id"]
    item = await get_json(client, f"/v2/events/{event_id}")
    assert item["id"] == event_id and item["deliveries"][0]["state"] == "delivered"
    narrowed = await get_json(client, f"/v2/events/{event_id}", webhookId=elsewhere)
    assert [(d["webhookId"], d["state"]) for d in narrowed["deliveries"]] == [(elsewhere, "not-matched")]


async def test_retrying_says_until_when(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """A delivery waiting for its next attempt is retrying, with the time that attempt is due."""
    client = await make_client(make_settings(**{**FAST, "retry_schedule": "60s"}), api=True, workers=1)
    sink.always("/a", Reply(503))
    hook = await create(client, callback=sink.url("/a"))
    await client.app[DELIVERY].view.refresh()
    before = int(time.time() * 1000)
    await send(client, call_event(call_id=6))
    page = await states_until(client, "/v2/events", {hook: "retrying"}, resourceId="6")
    (delivery,) = page["items"][0]["deliveries"]
    assert delivery["state"] == "retrying" and delivery["retryAt"] > before + 30_000


async def test_filters_narrow_the_search(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """resourceType, eventType (any case), since and until each narrow the search, newest first."""
    client = await make_client(make_settings(), api=True)
    start = int(time.time() * 1000)
    await send(client, call_event("Finished", call_id=1))
    await asyncio.sleep(0.01)
    middle = int(time.time() * 1000)
    await send(client, call_event("Started", call_id=2))
    await send(client, call_event("Finished", "Text", call_id=3))

    async def ids(**params: Any) -> list[str]:
        page = await get_json(client, "/v2/events", since=start, **params)
        return [i["resourceId"] for i in page["items"]]

    assert await ids() == ["3", "2", "1"]
    assert await ids(resourceType="OutboundCall") == ["2", "1"]
    assert await ids(eventType="finished") == ["3", "1"]
    assert await ids(until=middle - 1) == ["1"]
    assert await ids(limit=1, offset=1) == ["2"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"resourceId": "12x"}, "resourceId:"),
        ({"resourceId": "1.5"}, "resourceId:"),
        ({"since": "noon"}, "since:"),
        ({"since": "10", "until": "5"}, "until: must not be earlier than since"),
        ({"webhookId": "x"}, "webhookId:"),
    ],
)
async def test_bad_search_is_400(client: Any, params: dict[str, str], named: str) -> None:
    """Each bad search parameter is 400 naming it."""
    error = await get_json(client, "/v2/events", status=400, **params)
    assert named in error["message"]


async def test_unknown_and_malformed_ids(client: Any) -> None:
    """An id of no retained event is 404; a text that is not an event id is 400."""
    missing = await get_json(client, f"/v2/events/evt_{'0' * 32}_0", status=404)
    assert missing["httpStatusCode"] == 404
    malformed = await get_json(client, "/v2/events/123", status=400)
    assert "id:" in malformed["message"]
