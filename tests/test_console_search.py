"""The console's event search: by CallFire resource id (exact past 2**53), showing where each event
went per webhook. Real Redis, the relay's workers in process, a real sink."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.delivery import DELIVERY
from relay.settings import Settings
from tests.api_client import AUTH, create
from tests.callbacks import call_event, callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Sink

BIG_ID = 2**62 + 5
"""Past 2**53: a float would round it."""


async def test_search_shows_where_the_event_went(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """The event of a 64-bit resource id is found; the webhook it reached shows delivered, one
    watching another event shows not-matched; an event of another resource id is not listed."""
    sink = await Sink().start()
    try:
        client = await make_client(make_settings(**FAST), workers=1)
        reached = await create(client, name="reached", callback=sink.url("/a"))
        missed = await create(client, name="missed", resource="InboundCall", callback=sink.url("/b"))
        await client.app[DELIVERY].view.refresh()
        for call_id in (BIG_ID, BIG_ID + 1):
            body = callback_body(call_event(call_id=call_id))
            assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
        await sink.wait_for(2, "/a")
        await client.app[DELIVERY].completer.drained()
        resp = await client.get(f"/console/events?resourceId={BIG_ID}", headers=AUTH)
        assert resp.status == 200
        page = await resp.text()
    finally:
        await sink.close()
    assert "1 event found" in page
    assert f"resource {BIG_ID}" in page and f"resource {BIG_ID + 1}" not in page
    rows = {row.split("</td>")[0].split(">")[-1]: row for row in page.split("<tr class=")[1:]}
    assert '"delivered"' in rows[f"{reached} reached"].split(">")[0]
    assert '"not-matched"' in rows[f"{missed} missed"].split(">")[0]


async def test_a_resource_id_that_is_not_a_number_is_explained(client: Any) -> None:
    """A resource id that is not an integer: 400, and the page names the field."""
    resp = await client.get("/console/events?resourceId=abc", headers=AUTH)
    assert resp.status == 400
    assert "resourceId" in await resp.text()


async def test_without_a_search_only_the_form_shows(client: Any) -> None:
    """The bare page is the search form, with no result line."""
    resp = await client.get("/console/events", headers=AUTH)
    page = await resp.text()
    assert resp.status == 200 and 'name="resourceId"' in page and 'id="found"' not in page
