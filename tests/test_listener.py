"""POST /callbacks/callfire: what is accepted, what is refused, and what lands on the stream."""

from __future__ import annotations

from typing import Any

from relay.keys import Keys
from tests.callbacks import callback_body, call_event, signed


async def stream_entries(redis: Any, keys: Keys) -> list[tuple[bytes, dict[bytes, bytes]]]:
    out = []
    for stream in keys.all_events():
        out.extend(await redis.xrange(stream))
    return out


async def test_signed_callback_is_accepted_and_lands_on_the_stream(client: Any, redis: Any, keys: Keys) -> None:
    """A correctly signed callback gets 200 and one stream entry per event."""
    body = callback_body(call_event(call_id=7420017300281076000))
    resp = await client.post("/callbacks/callfire", data=body, headers=signed(body))
    assert resp.status == 200, await resp.text()
    entries = await stream_entries(redis, keys)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"resource"] == b"OutboundCall"
    assert b"7420017300281076000" in fields[b"json"]
