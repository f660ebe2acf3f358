"""Putting one event back on the way to one webhook: a first attempt on the deliveries stream of
the event's partition. Dead-letter replays and backfills both go this way, so the delivery has
the ``webhook-id`` it has always had (``StreamEvent.delivery_id``) and reaches that webhook only.
"""

from __future__ import annotations

from typing import Any

from relay.events import StreamEvent
from relay.keys import Keys


def queue_delivery(pipe: Any, keys: Keys, webhook_id: int, event: StreamEvent) -> None:
    """Add to ``pipe`` the XADD of the delivery of ``event`` to ``webhook_id``, attempt 1."""
    try:
        digest = bytes.fromhex(event.callback)
    except ValueError:
        digest = b""
    fields: Any = {"webhook": webhook_id, "attempt": 1, **event.to_fields()}
    pipe.xadd(keys.deliveries(keys.partition_of(digest)), fields)
