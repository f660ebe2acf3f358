"""One delivery (an event for one webhook, at some attempt) and the request it becomes. Pure.

A delivery travels in three forms: the fields of an entry on a partition's deliveries stream
(``webhook``, ``attempt`` and the event's own fields), a member of the scheduled-retries sorted
set (a JSON array of those field names and values, which the move-due script turns back into an
entry without parsing anything else), and the outbound HTTP request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from relay import selector
from relay.events import StreamEvent, outbound_body
from relay.signing import outbound_headers
from relay.webhooks.model import Webhook

USER_AGENT = "relay-webhooks/1"


@dataclass(frozen=True, slots=True)
class Delivery:
    webhook_id: int
    attempt: int
    """1 for the first attempt; the retry schedule's length + 1 for the last."""
    event: StreamEvent

    @property
    def id(self) -> str:
        """The ``webhook-id`` header: the same on every attempt of this delivery."""
        return self.event.delivery_id(self.webhook_id)

    def to_fields(self) -> dict[str, str | bytes | int]:
        return {"webhook": self.webhook_id, "attempt": self.attempt, **self.event.to_fields()}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Delivery:
        """Raises KeyError or ValueError on an entry that is not a delivery (a poison entry)."""
        attempt = int(fields[b"attempt"])
        if attempt < 1:
            raise ValueError(f"attempt {attempt} is not a positive number")
        return cls(int(fields[b"webhook"]), attempt, StreamEvent.from_fields(fields))

    def member(self) -> bytes:
        """The sorted-set member: ``["webhook", "7", "attempt", "2", "resource", ...]``."""
        flat: list[str] = []
        for name, value in self.to_fields().items():
            flat.append(name)
            flat.append(value.decode() if isinstance(value, bytes) else str(value))
        return orjson.dumps(flat)

    def again(self, attempt: int) -> Delivery:
        return Delivery(self.webhook_id, attempt, self.event)


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    verify_ssl: bool


@functools.lru_cache(maxsize=1024)
def _selector(text: str) -> selector.Selector:
    return selector.parse(text)


def body_for(event: StreamEvent, webhook: Webhook) -> bytes:
    """CallFire's envelope with the relay webhook's id and name, trimmed by its ``fields``."""
    body = outbound_body(event, webhook.id, webhook.name or "")
    if webhook.fields:
        body = selector.trim(_selector(webhook.fields), body)
    return body


def build_request(delivery: Delivery, webhook: Webhook, now: float) -> OutboundRequest:
    """The POST of one attempt, signed at ``now`` (unix seconds)."""
    body = body_for(delivery.event, webhook)
    secret = webhook.secret.get_secret_value() if webhook.secret is not None else None
    headers = outbound_headers(secret, delivery.id, int(now), body)
    headers["User-Agent"] = USER_AGENT
    return OutboundRequest(webhook.callback, body, headers, verify_ssl=not webhook.non_strict_ssl)
