"""Where an event went: per webhook, its attempts and its state, from the event's outcome log
(``relay.store.attempts``: the webhooks it matched when first read, then each attempt). Pure.

A webhook's state is its newest record's: ``delivered``; ``retrying`` (with ``retryAt``, when the
next attempt is due); ``dead-letter`` (given up on, or refused). Without a record: ``pending``
when the event matched it (an attempt is under way or put off) or when no worker has read the
event yet, else ``not-matched``.
"""

from __future__ import annotations

from typing import Any

from relay.events import StreamEvent
from relay.store.attempts import MATCHED

STATE_OF = {"delivered": "delivered", "retry": "retrying", "dead": "dead-letter", "refused": "dead-letter"}
STATES = ("delivered", "retrying", "dead-letter", "not-matched", "pending")


def entry_of(log: list[dict[str, Any]]) -> str | None:
    """Where the event is on its stream (``partition/entry id``), as the log noted it."""
    return next((r.get("entry") for r in log if r.get("outcome") == MATCHED), None)


def _state(records: list[dict[str, Any]], webhook_id: int, matched: set[int] | None) -> tuple[str, Any]:
    if records:
        newest = records[0]
        state = STATE_OF.get(str(newest.get("outcome")), "pending")
        return state, newest.get("retryAt") if state == "retrying" else None
    if matched is None or webhook_id in matched:
        return "pending", None
    return "not-matched", None


def trail(event: StreamEvent, log: list[dict[str, Any]], others: list[int]) -> list[dict[str, Any]]:
    """One entry per webhook the event matched or was attempted for, then per webhook of
    ``others`` (e.g. every webhook there is now) that it did not reach."""
    matched: set[int] | None = None
    by_webhook: dict[int, list[dict[str, Any]]] = {}
    for record in log:  # newest first
        if record.get("outcome") == MATCHED:
            matched = (matched or set()) | set(record.get("webhookIds") or ())
        elif isinstance(record.get("webhookId"), int):
            by_webhook.setdefault(record["webhookId"], []).append(record)
    ids = sorted(set(by_webhook) | (matched or set()))
    ids += sorted(set(others) - set(ids))
    out = []
    for webhook_id in ids:
        records = by_webhook.get(webhook_id, [])
        state, retry_at = _state(records, webhook_id, matched)
        out.append(
            {
                "webhookId": webhook_id,
                "deliveryId": event.delivery_id(webhook_id),
                "state": state,
                "retryAt": retry_at,
                "attempts": records,
            }
        )
    return out
