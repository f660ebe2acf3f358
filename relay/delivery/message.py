"""One delivery (an event for one webhook, at some attempt) and the request it becomes. Pure.

A delivery travels in three forms: the fields of an entry on a partition's deliveries stream
(``webhook``, ``attempt`` and the event's own fields), a retry waiting in the scheduled set
(``relay.delivery.retry``), and the outbound HTTP request.

What a request needs from its webhook (the envelope's fixed part, the parsed ``fields``
selector, both HMAC keys) is worked out once per webhook (``Prepared``), not per delivery.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from relay import selector
from relay.delivery.hosts import host_of
from relay.events import StreamEvent
from relay.signing import WEBHOOK_ID, WEBHOOK_TIMESTAMP, Signer
from relay.webhooks.model import Webhook
from relay.webhooks.sealing import SealedSecret, SecretUnreadable

USER_AGENT = "relay-webhooks/1"


@dataclass(frozen=True, slots=True)
class Delivery:
    webhook_id: int
    attempt: int
    """1 for the first attempt; the retry schedule's length + 1 for the last."""
    event: StreamEvent
    first_ms: int = 0
    """Unix ms of its first attempt (or of its first pause, if it never had one); 0 before."""

    @property
    def id(self) -> str:
        """The ``webhook-id`` header: the same on every attempt of this delivery."""
        return self.event.delivery_id(self.webhook_id)

    def to_fields(self) -> dict[str, str | bytes | int]:
        fields: dict[str, str | bytes | int] = {"webhook": self.webhook_id, "attempt": self.attempt}
        if self.first_ms:
            fields["first"] = self.first_ms
        return {**fields, **self.event.to_fields()}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Delivery:
        """Raises KeyError or ValueError on an entry that is not a delivery (a poison entry)."""
        attempt = int(fields[b"attempt"])
        if attempt < 1:
            raise ValueError(f"attempt {attempt} is not a positive number")
        first = int(fields.get(b"first", b"0"))
        return cls(int(fields[b"webhook"]), attempt, StreamEvent.from_fields(fields), first)

    def again(self, attempt: int, first_ms: int) -> Delivery:
        """The delivery at ``attempt``; its first attempt's time kept, or ``first_ms`` if unknown."""
        return Delivery(self.webhook_id, attempt, self.event, self.first_ms or first_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    verify_ssl: bool


@functools.lru_cache(maxsize=1024)
def _selector(text: str) -> selector.Selector:
    return selector.parse(text)


@functools.lru_cache(maxsize=256)
def _json_string(text: str) -> bytes:
    return orjson.dumps(text)


class Prepared:
    """A webhook made ready to sign requests: computed once, used for every delivery to it."""

    __slots__ = ("_identity", "_readable", "_selector", "_signer", "host", "webhook")

    def __init__(self, webhook: Webhook) -> None:
        self.webhook = webhook
        self.host = host_of(webhook.callback)
        name = orjson.dumps(webhook.name or "")
        self._identity = b',"webhookId":%d,"webhookName":%s,"resourceType":' % (webhook.id, name)
        self._selector = _selector(webhook.fields) if webhook.fields else None
        self._readable = not isinstance(webhook.secret, SealedSecret)  # else no key opened it
        secret = webhook.secret.get_secret_value() if webhook.secret is not None and self._readable else ""
        self._signer = Signer(secret) if secret else None

    def body(self, event: StreamEvent) -> bytes:
        """CallFire's envelope with the relay webhook's id and name, the event's JSON untouched
        (``relay.events.outbound_body``), trimmed by the webhook's ``fields``."""
        timestamp = event.timestamp if event.timestamp is not None else event.received_at
        body = b'{"timestamp":%d%s%s,"events":[%s]}' % (
            timestamp,
            self._identity,
            _json_string(event.resource),
            event.json,
        )
        if self._selector is not None:
            body = selector.trim(self._selector, body)
        return body

    def request(self, delivery: Delivery, now: float) -> OutboundRequest:
        """The POST of one attempt, signed at ``now`` (unix seconds). Raises ValueError when the
        delivery cannot be sent (its entry is poison) or the ``fields`` trim fails, and
        ``SecretUnreadable`` when the webhook's secret is sealed under no configured key."""
        if not self._readable:
            raise SecretUnreadable("no key of RELAY_SECRET_KEYS opens the webhook's stored secret")
        body = self.body(delivery.event)
        msg_id = delivery.id
        if "\r" in msg_id or "\n" in msg_id:  # from the stream entry's fields: never trust it
            raise ValueError("a line break in the delivery id")
        timestamp = int(now)
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_ID: msg_id,
            WEBHOOK_TIMESTAMP: str(timestamp),
            "User-Agent": USER_AGENT,
        }
        if self._signer is not None:
            self._signer.sign(headers, msg_id, timestamp, body)
        webhook = self.webhook
        return OutboundRequest(
            url=webhook.callback, body=body, headers=headers, verify_ssl=not webhook.non_strict_ssl
        )
