"""Operational events: what the relay tells subscribers about its own webhooks. Pure.

On resource ``RelayWebhook`` (``relay.catalog.OPERATIONAL``) the relay raises ``Failing`` (a
webhook's circuit breaker opened), ``Recovered`` (it closed), ``Disabled`` (switched off: it kept
failing for ``RELAY_DISABLE_AFTER``, or its callback answered 410 Gone) and ``DeadLettered`` (at
most once a webhook a minute, with the ``count`` of letters since the last one). Each is an event
like CallFire's, put on an events stream, so webhooks subscribe to it, and it is delivered, signed
and retried, like any other:

    {"timestamp": <unix ms>, "resourceType": "RelayWebhook", "eventType": "Failing",
     "resource": {"id": 7, "name": "crm", "callback": "https://crm.example/hook",
                  "reason": "...", "lastStatus": 503, "lastError": null}}

A notice travels as an item of the outbox (``relay.store.notices``): JSON pushed by the script
that decided it, holding the event's name, its time (``at``), a sequence number, the webhook's
``context`` (a JSON text made here; empty: announce nothing) and what the reason is made from.
An auto-disable's item also names the webhook to switch off (``off``): the worker moving the item
onto a stream does it first. ``parse`` reads an item; the same item always gives the same event
(its id, its ``webhook-id``).

No notice is ever raised about the delivery of an operational event (``quiet``): a failing
subscriber to ``RelayWebhook`` cannot set off a chain of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from relay.catalog import OPERATIONAL, event_key
from relay.events import StreamEvent

FAILING, RECOVERED, DISABLED, DEAD_LETTERED = "Failing", "Recovered", "Disabled", "DeadLettered"
QUIET_MS = 60_000
"""``DeadLettered`` is raised at most once per webhook in this many ms."""
GONE = "its callback answered 410 Gone"


def quiet(event: StreamEvent) -> bool:
    """The event is itself operational: nothing it leads to raises a notice."""
    return event.resource == OPERATIONAL


def public_callback(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def context(
    webhook_id: int,
    name: str | None,
    callback: str | None,
    status: int | None = None,
    error: str | None = None,
) -> bytes:
    """What a notice says of its webhook and of its last attempt, as the outbox keeps it."""
    return orjson.dumps(
        {
            "id": webhook_id,
            "name": name,
            "callback": None if callback is None else public_callback(callback),
            "lastStatus": status,
            "lastError": error or None,
        }
    )


KEPT_FAILING = "it kept failing with no success for RELAY_DISABLE_AFTER"


def disabled_after(seconds: float) -> str:
    return f"{KEPT_FAILING} ({seconds:g}s)"


def _reason(item: dict[str, Any]) -> str:
    event = item["event"]
    if event == FAILING:
        return f"{int(item['failures'])} failed attempts in a row: its deliveries are paused"
    if event == RECOVERED:
        return "a delivery succeeded: its circuit breaker closed, deliveries resume"
    return str(item.get("reason") or "")


@dataclass(frozen=True, slots=True)
class Notice:
    """What one outbox item asks for."""

    event: StreamEvent | None
    """The event to put on a stream; None when it is about an operational delivery (quiet)."""
    switch_off: int | None
    """The webhook to disable first (``RELAY_DISABLE_AFTER``), or None."""
    reason: str


def parse(item: bytes) -> Notice:
    """What an outbox item asks for. Raises ValueError (or KeyError, TypeError) on an item that is
    not one."""
    data = orjson.loads(item)
    if not isinstance(data, dict):
        raise ValueError("a notice is a JSON object")
    off = data.get("off")
    switch_off = None if off is None else int(off)
    event = _event(data, item) if data["ctx"] else None
    if event is None and switch_off is None:
        raise ValueError("a notice with nothing to do")
    return Notice(event, switch_off, _reason(data))


def _event(data: dict[str, Any], item: bytes) -> StreamEvent:
    ctx = orjson.loads(data["ctx"])
    event, at = str(data["event"]), int(data["at"])
    resource: dict[str, Any] = {
        "id": int(ctx["id"]),
        "name": ctx.get("name"),
        "callback": ctx.get("callback"),
        "reason": _reason(data),
        "lastStatus": ctx.get("lastStatus"),
        "lastError": ctx.get("lastError"),
    }
    if event == DEAD_LETTERED:
        resource["count"] = int(data["count"])
    body = {"timestamp": at, "resourceType": OPERATIONAL, "eventType": event, "resource": resource}
    return StreamEvent(
        resource=OPERATIONAL,
        event=event,
        event_key=event_key(event),
        cf_webhook_id=None,
        cf_webhook_name="",
        timestamp=at,
        received_at=at,
        callback=hashlib.sha256(item).hexdigest(),
        index=0,
        json=orjson.dumps(body),
    )
