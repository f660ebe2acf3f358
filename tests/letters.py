"""Dead letters for tests: written straight to the dead-letter stream of the private Redis."""

from __future__ import annotations

from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.dead_letters import DeadLetters, letter_fields

BIG_ID = 2**63 - 7
"""A call id past 2**53: a float would lose it."""


def stored_event(n: int) -> StreamEvent:
    return StreamEvent(
        resource="OutboundCall", event="Finished", event_key="finished", cf_webhook_id=1001,
        cf_webhook_name="cf", timestamp=5, received_at=6, callback=f"{n:064x}", index=0,
        json=b'{"resource":{"id":%d}}' % BIG_ID,
    )  # fmt: skip


async def seed(redis: RedisClient, keys: Keys, *letters: tuple[int | None, str, int]) -> list[str]:
    """Letters (webhook id, kind, at) written straight to the dead-letter stream; their ids."""
    store = DeadLetters(redis, keys)
    ids = []
    for n, (webhook_id, kind, at) in enumerate(letters):
        if kind == "poison":
            fields = letter_fields(kind=kind, reason="unreadable", at=at, raw={b"junk": b"1"})
        else:
            fields = letter_fields(
                kind=kind, reason="HTTP 500", at=at, webhook_id=webhook_id, attempts=3,
                last_status=500, event=stored_event(n),
            )  # fmt: skip
        ids.append(await store.add(fields))
    return ids
