"""/v2/webhooks: create, get, update, delete; validation errors; the secret never shown."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from relay.app import create_app
from relay.embedded import free_port
from relay.store.connect import connect
from tests.api_client import AUTH, create, get_json, webhook_body


async def test_create_answers_201_with_the_id(client: Any) -> None:
    """POST answers 201 and {"id": N}, and the webhook reads back with CallFire's fields."""
    resp = await client.post("/v2/webhooks", json=webhook_body(events=["finished"]), headers=AUTH)
    assert resp.status == 201
    created = await resp.json()
    assert set(created) == {"id"}
    got = await get_json(client, f"/v2/webhooks/{created['id']}")
    assert got["events"] == ["Finished"]
    assert set(got) == {
        "id",
        "name",
        "resource",
        "events",
        "callback",
        "enabled",
        "singleUse",
        "nonStrictSsl",
        "createdAt",
        "updatedAt",
    }
    assert got["enabled"] is True and got["createdAt"] == got["updatedAt"]


async def test_read_only_fields_sent_are_ignored(client: Any) -> None:
    """id, createdAt and updatedAt in a create body do not change what the relay assigns."""
    webhook_id = await create(client, id=999999, createdAt=1, updatedAt=2)
    got = await get_json(client, f"/v2/webhooks/{webhook_id}")
    assert got["id"] == webhook_id != 999999
    assert got["createdAt"] > 2


async def test_get_with_fields(client: Any) -> None:
    """GET /v2/webhooks/{id}?fields=id,name returns only those names."""
    webhook_id = await create(client)
    assert await get_json(client, f"/v2/webhooks/{webhook_id}", fields="id,name") == {
        "id": webhook_id,
        "name": "calls",
    }


async def test_get_unknown_is_404(client: Any) -> None:
    """An unknown id gets 404 with CallFire's error body."""
    body = await get_json(client, "/v2/webhooks/987654321", status=404)
    assert body["httpStatusCode"] == 404 and body["internalCode"] == "0" and "987654321" in body["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_non_integer_id_is_400(client: Any, method: str) -> None:
    """A path id that is not an integer gets 400 naming `id`."""
    resp = await client.request(method, "/v2/webhooks/abc", json={}, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("id:")


async def test_put_changes_only_the_fields_sent(client: Any) -> None:
    """PUT with a partial body answers 200 with no body and keeps the other fields."""
    webhook_id = await create(client, fields="webhookId")
    before = await get_json(client, f"/v2/webhooks/{webhook_id}")
    resp = await client.put(
        f"/v2/webhooks/{webhook_id}", json={"name": "renamed", "enabled": False}, headers=AUTH
    )
    assert resp.status == 200
    assert await resp.read() == b""
    after = await get_json(client, f"/v2/webhooks/{webhook_id}")
    assert (after["name"], after["enabled"]) == ("renamed", False)
    unchanged = ("resource", "events", "callback", "fields", "createdAt")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["updatedAt"] >= before["updatedAt"]


async def test_put_is_validated_as_a_whole(client: Any) -> None:
    """A PUT whose result would be invalid gets 400 and changes nothing."""
    webhook_id = await create(client)
    resp = await client.put(f"/v2/webhooks/{webhook_id}", json={"resource": "ContactList"}, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("events:")
    assert (await get_json(client, f"/v2/webhooks/{webhook_id}"))["resource"] == "OutboundCall"


async def test_put_unknown_is_404(client: Any) -> None:
    """PUT on an unknown id gets 404 and creates nothing."""
    resp = await client.put("/v2/webhooks/987654321", json={"name": "x"}, headers=AUTH)
    assert resp.status == 404
    assert (await get_json(client, "/v2/webhooks"))["totalCount"] == 0


async def test_delete_answers_204_then_404(client: Any) -> None:
    """DELETE answers 204; the webhook is gone; a second DELETE is 404."""
    webhook_id = await create(client)
    resp = await client.delete(f"/v2/webhooks/{webhook_id}", headers=AUTH)
    assert resp.status == 204
    await get_json(client, f"/v2/webhooks/{webhook_id}", status=404)
    assert (await client.delete(f"/v2/webhooks/{webhook_id}", headers=AUTH)).status == 404


INVALID = [
    ({"resource": "Nope"}, "resource"),
    ({"events": ["Started"]}, "events"),
    ({"events": []}, "events"),
    ({"events": "Finished"}, "events"),
    ({"callback": "not a url"}, "callback"),
    ({"callback": "mailto:a@b.c"}, "callback"),
    ({"fields": "events(("}, "fields"),
    ({"expiresAt": 1}, "expiresAt"),
    ({"enabled": "yes"}, "enabled"),
    ({"resource": ...}, "resource"),
    ({"callback": ...}, "callback"),
    ({"unknownField": 1}, "unknownField"),
    ({"rateLimit": 0}, "rateLimit"),
    ({"rateLimit": 10001}, "rateLimit"),
    ({"rateLimit": "5"}, "rateLimit"),
    ({"rateLimit": 2.5}, "rateLimit"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID)
async def test_invalid_create_is_400_naming_the_field(
    client: Any, overrides: dict[str, Any], field: str
) -> None:
    """Each validation failure gets 400 with CallFire's body, its message naming the field."""
    resp = await client.post("/v2/webhooks", json=webhook_body(**overrides), headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["httpStatusCode"] == 400
    assert body["message"].startswith(f"{field}:"), body["message"]


async def test_rate_limit_is_kept_changed_and_cleared(client: Any) -> None:
    """rateLimit is stored on create, returned on get, changed by PUT and removed by null."""
    webhook_id = await create(client, rateLimit=5)
    assert (await get_json(client, f"/v2/webhooks/{webhook_id}"))["rateLimit"] == 5
    resp = await client.put(f"/v2/webhooks/{webhook_id}", json={"rateLimit": 10000}, headers=AUTH)
    assert resp.status in (200, 204)
    assert (await get_json(client, f"/v2/webhooks/{webhook_id}"))["rateLimit"] == 10000
    resp = await client.put(f"/v2/webhooks/{webhook_id}", json={"rateLimit": None}, headers=AUTH)
    assert resp.status in (200, 204)
    assert "rateLimit" not in await get_json(client, f"/v2/webhooks/{webhook_id}")


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"x"', b"\xff"])
async def test_bad_json_is_400(client: Any, raw: bytes) -> None:
    """A body that is not a JSON object gets 400."""
    resp = await client.post("/v2/webhooks", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("body:")


async def test_secret_never_in_responses_or_logs(client: Any) -> None:
    """The secret is accepted but appears in no response and no log line."""
    secret = "never-show-this-7f3a"
    with structlog.testing.capture_logs() as logs:
        webhook_id = await create(client, secret=secret)
        texts = [
            await (await client.get(f"/v2/webhooks/{webhook_id}", headers=AUTH)).text(),
            await (await client.get("/v2/webhooks", headers=AUTH)).text(),
            await (
                await client.put(f"/v2/webhooks/{webhook_id}", json={"secret": secret + "2"}, headers=AUTH)
            ).text(),
            await (await client.put(f"/v2/webhooks/{webhook_id}", json={"secret": 5}, headers=AUTH)).text(),
            await (
                await client.post(
                    "/v2/webhooks", json=webhook_body(secret=secret, resource="X"), headers=AUTH
                )
            ).text(),
        ]
    assert logs, "the API logs its writes"
    assert not [t for t in [*texts, repr(logs)] if secret in t]


async def test_unreachable_redis_is_503(settings: Any) -> None:
    """With Redis unreachable the API answers 503 with Retry-After, in CallFire's error shape."""
    dead = connect(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    client = TestClient(TestServer(create_app(settings, dead, listener=False, api=True)))
    await client.start_server()
    try:
        resp = await client.get("/v2/webhooks", headers=AUTH)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        assert (await resp.json())["httpStatusCode"] == 503
    finally:
        await client.close()
        await dead.aclose()


ANSWERED = {"resource.finalCallResult": {"$in": ["LA", "AM"]}}
BIG_ID = {"resource.id": 7420017300281076001}


async def test_filter_is_stored_and_returned(client: Any) -> None:
    """A filter given on create comes back on get as sent, integers past 2^53 exact."""
    webhook_id = await create(client, filter={**ANSWERED, **BIG_ID})
    resp = await client.get(f"/v2/webhooks/{webhook_id}", headers=AUTH)
    assert b'"resource.id":7420017300281076001' in await resp.read()
    assert (await resp.json())["filter"] == {**ANSWERED, **BIG_ID}


async def test_put_sets_changes_and_removes_the_filter(client: Any) -> None:
    """PUT sets a filter, a later PUT without it keeps it, and "filter": null removes it."""
    webhook_id = await create(client)
    assert "filter" not in await get_json(client, f"/v2/webhooks/{webhook_id}")
    for body, expected in [
        ({"filter": ANSWERED}, ANSWERED),
        ({"name": "x"}, ANSWERED),
        ({"filter": None}, None),
    ]:
        resp = await client.put(f"/v2/webhooks/{webhook_id}", json=body, headers=AUTH)
        assert resp.status == 200, await resp.text()
        assert (await get_json(client, f"/v2/webhooks/{webhook_id}")).get("filter") == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"resource.finalCallResult": {"$in": "LA"}},
            "filter.resource.finalCallResult.$in: must be a non-empty list",
        ),
        ({"resource.x": {"$regex": "a"}}, "filter.resource.x.$regex: unknown operator"),
        ({"$or": [{"a": 1}, 2]}, "filter.$or.1: must be a filter object"),
        ({f"k{n}": n for n in range(64)}, "filter: has more than 64 nodes"),
        ("LA", "filter: must be a JSON object"),
    ],
)
async def test_bad_filter_is_400_naming_the_part(client: Any, bad: Any, message: str) -> None:
    """A filter outside the grammar or the limits gets 400 naming the part at fault, on create and
    on update, and the stored webhook is left as it was."""
    resp = await client.post("/v2/webhooks", json=webhook_body(filter=bad), headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"].startswith(message), await resp.text()
    webhook_id = await create(client, filter=ANSWERED)
    resp = await client.put(f"/v2/webhooks/{webhook_id}", json={"filter": bad}, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"].startswith(message)
    assert (await get_json(client, f"/v2/webhooks/{webhook_id}"))["filter"] == ANSWERED


async def test_operational_events_are_subscribed_to_like_any_other(client: Any) -> None:
    """A webhook subscribes to the relay's own RelayWebhook events through the same API; an event
    that resource lacks is a 400."""
    webhook_id = await create(client, resource="RelayWebhook", events=["disabled", "DeadLettered"])
    got = await get_json(client, f"/v2/webhooks/{webhook_id}")
    assert (got["resource"], got["events"]) == ("RelayWebhook", ["Disabled", "DeadLettered"])
    bad = webhook_body(resource="RelayWebhook", events=["Finished"])
    resp = await client.post("/v2/webhooks", json=bad, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("events:")
