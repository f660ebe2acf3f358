"""The console's dry run page (relay/console/dry_run.py) over HTTP: the API's dry run as a form."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from relay.keys import Keys
from relay.store.connect import RedisClient
from tests.api_client import AUTH
from tests.callbacks import call_event, stream_event


async def publish(redis: RedisClient, keys: Keys, *results: str) -> None:
    for n, result in enumerate(results):
        event = call_event(call_id=7420017300281076001 + n)
        event["resource"]["finalCallResult"] = result
        await redis.xadd(keys.events(0), stream_event(event, int(time.time() * 1000)).to_fields())  # type: ignore[arg-type]


async def get(client: Any, status: int = 200, **params: str) -> str:
    resp = await client.get("/console/dry-run", params=params, headers=AUTH)
    assert resp.status == status, await resp.text()
    return str(await resp.text())


async def test_the_empty_form_runs_nothing(client: TestClient[Any, Any]) -> None:
    """Without a query the page shows the form, filled for the last hour, and no result."""
    page = await get(client)
    assert 'id="dry-run"' in page and 'value="OutboundCall"' in page
    assert "dry-run-counts" not in page


async def test_a_run_shows_the_count_and_the_bodies(
    client: TestClient[Any, Any], redis: RedisClient, keys: Keys
) -> None:
    """A filled form shows how many events match and each body, ids exact."""
    await publish(redis, keys, "LA", "BUSY", "AM")
    page = await get(
        client,
        resource="OutboundCall",
        events="finished",
        filter='{"resource.finalCallResult": {"$in": ["LA", "AM"]}}',
        fields="events(resource(id))",
        since="0",
    )
    assert "<strong>2</strong> of 3 scanned" in page
    assert "7420017300281076001" in page and "7420017300281076003" in page
    assert "7420017300281076002" not in page


async def test_bad_input_is_named_on_the_page(client: TestClient[Any, Any]) -> None:
    """A bad filter, bad JSON or a bad time is a 400 page naming the field, the form kept."""
    base = {"resource": "OutboundCall", "events": "Finished", "fields": "", "since": "0"}
    for changed, message in [
        ({"filter": '{"a": {"$in": 1}}'}, "webhook.filter.a.$in: must be a non-empty list"),
        ({"filter": "{"}, "webhook.filter: is not valid JSON"),
        ({"filter": "", "since": "yesterday"}, "since: must be an integer"),
        ({"filter": "", "events": "Started"}, "webhook.events: &#39;Started&#39; is not an event"),
    ]:
        page = await get(client, 400, **{**base, **changed})
        assert message in page, page
        assert 'id="dry-run"' in page
