"""Whether a webhook wants an event: the one place that decides it. Pure.

Live delivery (the worker's view narrows the candidates by its index first) and backfill both ask
``wants``, so whatever a webhook may come to match on is honoured by both.
"""

from __future__ import annotations

import functools

from relay.catalog import event_key
from relay.events import StreamEvent
from relay.webhooks.model import Webhook


@functools.lru_cache(maxsize=4096)
def _event_keys(events: tuple[str, ...]) -> frozenset[str]:
    return frozenset(event_key(e) for e in events)


def wants(webhook: Webhook, event: StreamEvent) -> bool:
    """The event is on the webhook's resource and is one of its events."""
    return webhook.resource == event.resource and event.event_key in _event_keys(webhook.events)
