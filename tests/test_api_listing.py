"""GET /v2/webhooks: every filter, paging edges and partial responses."""

from __future__ import annotations

from typing import Any

import pytest

from relay.api.schemas import MAX_LIMIT
from tests.api_client import AUTH, create, get_json


async def ids(client: Any, **params: Any) -> list[int]:
    return [item["id"] for item in (await get_json(client, "/v2/webhooks", **params))["items"]]


@pytest.fixture
async def three(client: Any) -> list[int]:
    """Three webhooks that differ in every filterable field."""
    a, b = "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"
    return [
        await create(client, name="a", resource="OutboundCall", events=["Finished"], callback=a),
        await create(client, name="b", resource="CallBroadcast", events=["Started", "Stopped"], callback=b),
        await create(
            client, name="c", resource="CallBroadcast", events=["Finished"], callback=a, enabled=False
        ),
    ]


async def test_page_shape_and_defaults(client: Any, three: list[int]) -> None:
    """Without parameters: every webhook by id, limit 100, offset 0, totalCount."""
    page = await get_json(client, "/v2/webhooks")
    assert [item["id"] for item in page["items"]] == three
    assert (page["limit"], page["offset"], page["totalCount"]) == (100, 0, 3)


FILTERS = [
    ({"name": "b"}, [1]),
    ({"name": "B"}, []),
    ({"resource": "CallBroadcast"}, [1, 2]),
    ({"resource": "callbroadcast"}, []),
    ({"resource": "Nope"}, []),
    ({"event": "finished"}, [0, 2]),
    ({"event": "STOPPED"}, [1]),
    ({"callback": "http://127.0.0.1:9/a"}, [0, 2]),
    ({"callback": "http://127.0.0.1:9/A"}, []),
    ({"enabled": "false"}, [2]),
    ({"enabled": "true"}, [0, 1]),
    ({"resource": "CallBroadcast", "event": "Finished", "enabled": "false"}, [2]),
    ({"resource": "CallBroadcast", "callback": "http://127.0.0.1:9/b", "name": "c"}, []),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
async def test_filters(client: Any, three: list[int], params: dict[str, str], expected: list[int]) -> None:
    """name, resource and callback match exactly, event case-insensitively; filters combine."""
    page = await get_json(client, "/v2/webhooks", **params)
    assert [item["id"] for item in page["items"]] == [three[i] for i in expected]
    assert page["totalCount"] == len(expected)


PAGES = [
    ({"offset": "1", "limit": "1"}, [1], 1),
    ({"offset": "2"}, [2], 100),
    ({"offset": "3"}, [], 100),
    ({"offset": "50"}, [], 100),
    ({"limit": "0"}, [], 0),
    ({"limit": str(MAX_LIMIT + 1)}, [0, 1, 2], MAX_LIMIT),
]


@pytest.mark.parametrize(("params", "expected", "limit"), PAGES)
async def test_paging_edges(
    client: Any, three: list[int], params: dict[str, str], expected: list[int], limit: int
) -> None:
    """Offset past the end is an empty page, limit 0 is a count, limit over the cap is capped."""
    page = await get_json(client, "/v2/webhooks", **params)
    assert [item["id"] for item in page["items"]] == [three[i] for i in expected]
    assert (page["totalCount"], page["limit"]) == (3, limit)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": "-1"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "x"}, "limit"),
        ({"offset": str(2**31)}, "offset"),
        ({"enabled": "maybe"}, "enabled"),
        ({"fields": "items("}, "fields"),
    ],
)
async def test_bad_parameter_is_400(client: Any, params: dict[str, str], name: str) -> None:
    """A malformed query parameter gets 400 naming it."""
    resp = await client.get("/v2/webhooks", params=params, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"].startswith(f"{name}:")


async def test_fields_on_a_page(client: Any, three: list[int]) -> None:
    """fields=items(id,name) returns an object holding only items, each with only id and name."""
    page = await get_json(client, "/v2/webhooks", fields="items(id,name)", limit="2")
    assert page == {"items": [{"id": three[0], "name": "a"}, {"id": three[1], "name": "b"}]}


async def test_fields_nested_group(client: Any, three: list[int]) -> None:
    """fields=totalCount,items(events) keeps the count and each item's events."""
    page = await get_json(client, "/v2/webhooks", fields="totalCount,items(events)", name="b")
    assert page == {"totalCount": 1, "items": [{"events": ["Started", "Stopped"]}]}


async def test_listing_never_shows_secrets(client: Any, three: list[int]) -> None:
    """No item of a page carries a secret."""
    page = await get_json(client, "/v2/webhooks")
    assert all("secret" not in item for item in page["items"])
