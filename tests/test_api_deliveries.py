"""GET /v2/webhooks/{id}/deliveries: recent attempts, newest first, behind the API's credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.delivery import DELIVERY
from relay.settings import Settings
from tests.api_client import create, get_json
from tests.callbacks import callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Reply, Sink


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink().start()
    yield server
    await server.close()


async def test_attempts_are_listed_newest_first(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], sink: Sink
) -> None:
    """A failed attempt then a delivered one: both listed, the newest first, with their status."""
    client = await make_client(make_settings(**FAST), api=True, workers=1)
    sink.script("/hook", Reply(503))
    webhook_id = await create(client, callback=sink.url("/hook"))
    await client.app[DELIVERY].view.refresh()
    body = callback_body()
    resp = await client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 200, await resp.text()
    await sink.wait_for(2)
    await client.app[DELIVERY].completer.drained()
    page = await get_json(client, f"/v2/webhooks/{webhook_id}/deliveries")
    assert page["totalCount"] == 2
    assert [(i["outcome"], i["status"], i["attempt"]) for i in page["items"]] == [
        ("delivered", 200, 2),
        ("retry", 503, 1),
    ]
    assert page["items"][0]["deliveryId"] == sink.received[0].delivery_id


async def test_unknown_webhook_is_404(client: Any) -> None:
    """Deliveries of a webhook that does not exist: 404 with CallFire's error body."""
    body = await get_json(client, "/v2/webhooks/424242/deliveries", status=404)
    assert body["httpStatusCode"] == 404


async def test_credentials_are_required(client: Any) -> None:
    """Without HTTP Basic the attempts are not shown."""
    webhook_id = await create(client)
    resp = await client.get(f"/v2/webhooks/{webhook_id}/deliveries")
    assert resp.status == 401
