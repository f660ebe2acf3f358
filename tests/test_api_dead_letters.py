"""/v2/dead-letters: list (filters, paging), show, replay (ids, filter, all), delete, and every 400."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.delivery import DELIVERY
from relay.delivery.message import Delivery
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.api_client import AUTH, create, get_json
from tests.callbacks import call_event, callback_body, signed
from tests.delivery_harness import FAST
from tests.letters import BIG_ID, seed, stored_event
from tests.sink import Reply, Sink


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.close()


async def post(client: Any, path: str, body: Any, status: int = 200) -> Any:
    resp = await client.post(path, json=body, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def fail_one(client: Any, sink: Sink, call_id: int = BIG_ID) -> tuple[int, str]:
    """A webhook whose callback answers 500 until it gives up; the delivery's dead letter id."""
    sink.always("/hook", Reply(500, text="x" * 3000))
    webhook_id = await create(client, callback=sink.url("/hook"))
    await client.app[DELIVERY].view.refresh()
    body = callback_body(call_event(call_id=call_id))
    assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
    await sink.wait_for(3)
    deadline = time.monotonic() + 5
    while not (page := await get_json(client, "/v2/dead-letters"))["items"]:
        assert time.monotonic() < deadline, "no dead letter"
        await client.app[DELIVERY].completer.drained()
    return webhook_id, page["items"][0]["id"]


async def test_list_is_newest_first_and_paged(client: Any, redis: RedisClient, keys: Keys) -> None:
    """Letters come newest first; limit and offset cut the page, totalCount counts them all."""
    now = int(time.time() * 1000)
    ids = await seed(redis, keys, *((7, "exhausted", now + n) for n in range(5)))
    page = await get_json(client, "/v2/dead-letters", limit=2, offset=1)
    assert [i["id"] for i in page["items"]] == [ids[3], ids[2]]
    assert (page["limit"], page["offset"], page["totalCount"]) == (2, 1, 5)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"webhookId": 7}, [2, 0]),
        ({"kind": "refused"}, [1]),
        ({"kind": "poison"}, [3]),
        ({"since": 2000}, [3, 2, 1]),
        ({"until": 2000}, [1, 0]),
        ({"since": 1500, "until": 3000, "webhookId": 7}, [2]),
    ],
)
async def test_list_filters(
    client: Any, redis: RedisClient, keys: Keys, params: dict[str, int], expected: list[int]
) -> None:
    """webhookId, kind, since and until (when the letter was written) each narrow the list."""
    now = int(time.time() * 1000)
    ids = await seed(
        redis, keys, (7, "exhausted", now + 1000), (8, "refused", now + 2000),
        (7, "gone", now + 3000), (None, "poison", now + 4000),
    )  # fmt: skip
    shifted = {k: v + now if k in ("since", "until") else v for k, v in params.items()}
    page = await get_json(client, "/v2/dead-letters", **shifted)
    assert [i["id"] for i in page["items"]] == [ids[n] for n in expected]
    assert page["totalCount"] == len(expected)


async def test_show_has_event_webhook_and_each_attempt(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """A letter shows its event (a 64-bit id exact), its webhook and each attempt, newest first,
    with its status, latency and the first 1 KiB of the answer."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    webhook_id, letter_id = await fail_one(client, sink)
    resp = await client.get(f"/v2/dead-letters/{letter_id}", headers=AUTH)
    text = await resp.text()
    assert resp.status == 200, text
    assert f'"id":{BIG_ID}' in text
    letter = await resp.json()
    assert letter["webhook"]["id"] == webhook_id and letter["kind"] == "exhausted"
    history = letter["history"]
    assert [a["attempt"] for a in history] == [3, 2, 1]
    assert {a["status"] for a in history} == {500}
    assert all(a["answer"] == "x" * 1024 and a["latencyMs"] >= 0 for a in history)
    assert {a["deliveryId"] for a in history} == {letter["deliveryId"]} == {sink.received[0].delivery_id}


async def test_replay_by_ids_keeps_the_webhook_id(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """A replayed letter goes out again with the same webhook-id and leaves the dead letters; an
    unknown id is skipped, with the reason."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    _, letter_id = await fail_one(client, sink)
    sink.always("/hook", Reply(200))
    result = await post(client, "/v2/dead-letters/replay", {"ids": [letter_id, "1-1"]})
    assert result == {"replayed": 1, "skipped": [{"id": "1-1", "reason": "no such dead letter"}]}
    received = await sink.wait_for(4)
    assert received[3].delivery_id == received[0].delivery_id
    assert (await get_json(client, "/v2/dead-letters"))["totalCount"] == 0


async def test_replay_that_fails_again_is_a_new_letter(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """A replay that fails again comes back as a new letter."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    _, letter_id = await fail_one(client, sink)
    await post(client, "/v2/dead-letters/replay", {"ids": [letter_id]})
    await sink.wait_for(6)
    deadline = time.monotonic() + 5
    while not (items := (await get_json(client, "/v2/dead-letters"))["items"]):
        assert time.monotonic() < deadline, "no new letter"
    assert [i["id"] for i in items] != [letter_id] and len(items) == 1


async def test_replay_by_filter(client: Any, redis: RedisClient, keys: Keys) -> None:
    """A filter replays the letters it chooses, each as attempt 1 with its own webhook-id, and
    leaves the others."""
    now = int(time.time() * 1000)
    ids = await seed(redis, keys, (7, "exhausted", now), (8, "exhausted", now), (7, "refused", now))
    result = await post(client, "/v2/dead-letters/replay", {"webhookId": 7, "kind": "exhausted"})
    assert result == {"replayed": 1, "skipped": []}
    event = stored_event(0)
    entries = await redis.xrange(keys.deliveries(keys.partition_of(bytes.fromhex(event.callback))))
    assert [Delivery.from_fields(fields).id for _, fields in entries] == [event.delivery_id(7)]
    left = await get_json(client, "/v2/dead-letters")
    assert [i["id"] for i in left["items"]] == [ids[2], ids[1]]


async def test_replay_all_skips_poison(client: Any, redis: RedisClient, keys: Keys) -> None:
    """``{"all": true}`` replays every letter; a poison letter is skipped and kept, with the reason."""
    now = int(time.time() * 1000)
    ids = await seed(redis, keys, (7, "exhausted", now), (None, "poison", now), (8, "gone", now))
    result = await post(client, "/v2/dead-letters/replay", {"all": True})
    assert result["replayed"] == 2
    assert [s["id"] for s in result["skipped"]] == [ids[1]] and "poison" in result["skipped"][0]["reason"]
    assert [i["id"] for i in (await get_json(client, "/v2/dead-letters"))["items"]] == [ids[1]]


async def test_delete_one(client: Any, redis: RedisClient, keys: Keys) -> None:
    """DELETE removes the letter (204); again, or a letter that never was, is 404."""
    (letter_id,) = await seed(redis, keys, (7, "exhausted", 1))
    resp = await client.delete(f"/v2/dead-letters/{letter_id}", headers=AUTH)
    assert resp.status == 204
    await get_json(client, f"/v2/dead-letters/{letter_id}", status=404)
    again = await client.delete(f"/v2/dead-letters/{letter_id}", headers=AUTH)
    assert again.status == 404 and (await again.json())["httpStatusCode"] == 404


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "body: name the dead letters"),
        ({"all": False}, "body: name the dead letters"),
        ({"ids": ["1-1"], "webhookId": 7}, "ids: cannot be combined with a filter"),
        ({"ids": ["1-1"], "since": 5}, "ids: cannot be combined with a filter"),
        ({"all": True, "kind": "gone"}, "all: cannot be combined"),
        ({"ids": []}, "ids: must name at least one"),
        ({"since": "5"}, "since:"),
        ({"until": 5.5}, "until:"),
        ({"since": 10, "until": 5}, "until: must not be earlier than since"),
        ({"kind": "lost"}, "kind:"),
        ({"webhookID": 7}, "webhookID:"),
    ],
)
async def test_replay_bad_bodies_are_400(client: Any, body: dict[str, Any], named: str) -> None:
    """Each bad replay body is 400 in CallFire's shape, naming the field; nothing is replayed."""
    error = await post(client, "/v2/dead-letters/replay", body, status=400)
    assert error["httpStatusCode"] == 400 and named in error["message"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"since": "yesterday"}, "since:"),
        ({"until": "1.5"}, "until:"),
        ({"since": "10", "until": "5"}, "until: must not be earlier than since"),
        ({"kind": "lost"}, "kind:"),
        ({"webhookId": "x"}, "webhookId:"),
    ],
)
async def test_list_bad_filters_are_400(client: Any, params: dict[str, str], named: str) -> None:
    """Each bad list filter is 400 naming the parameter."""
    error = await get_json(client, "/v2/dead-letters", status=400, **params)
    assert named in error["message"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_malformed_letter_id_is_400(client: Any, method: str) -> None:
    """A path id that is not a letter id is 400 naming it."""
    resp = await client.request(method, "/v2/dead-letters/not-an-id", headers=AUTH)
    assert resp.status == 400 and "id:" in (await resp.json())["message"]


async def test_credentials_are_required(client: Any) -> None:
    """Without HTTP Basic the dead letters are neither listed nor replayed."""
    assert (await client.get("/v2/dead-letters")).status == 401
    assert (await client.post("/v2/dead-letters/replay", json={"all": True})).status == 401
