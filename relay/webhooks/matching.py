"""Whether a webhook wants an event: the one place that decides it. Pure.

Live delivery (the worker's view narrows the candidates by its index first), backfill and the
dry run all ask ``wants``, so whatever a webhook may come to match on is honoured by each: its
resource, one of its events (any case), then its ``filter`` (``relay.webhooks.filters``).

A filter is compiled once per webhook version (``Webhook.predicate``); an event's JSON is decoded
only when a webhook with a filter looks at it, and once however many do (``document``).
"""

from __future__ import annotations

import functools
from typing import Any

from relay.catalog import event_key
from relay.events import StreamEvent
from relay.webhooks import filters
from relay.webhooks.model import Webhook


@functools.lru_cache(maxsize=4096)
def _event_keys(events: tuple[str, ...]) -> frozenset[str]:
    return frozenset(event_key(e) for e in events)


@functools.lru_cache(maxsize=64)
def document(json: bytes) -> Any:
    """An event's JSON decoded for filters (``filters.parse_event``), kept for the next webhook
    that looks at the same event; JSON that cannot be decoded (a poison entry) has every path
    missing. The filters only read it."""
    try:
        return filters.parse_event(json)
    except (ValueError, RecursionError):
        return filters.MISSING


def wants(webhook: Webhook, event: StreamEvent) -> bool:
    """The event is on the webhook's resource, is one of its events, and passes its filter."""
    if webhook.resource != event.resource or event.event_key not in _event_keys(webhook.events):
        return False
    predicate = webhook.predicate
    return predicate is None or predicate(document(event.json))
