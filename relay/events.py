"""One event on a stream: its fields, and the body a subscriber receives. Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import orjson

from relay.catalog import event_key
from relay.ingest.parsing import Callback

META = "m"
"""The entry field holding an event's metadata, packed (``pack_meta``)."""
JSON = "json"
"""The entry field holding the event's JSON, exactly as CallFire sent it."""

LEGACY_FIELDS = (
    "resource", "event", "event_key", "cf_webhook_id", "cf_webhook_name", "timestamp",
    "received_at", "callback", "index", "json",
)  # fmt: skip
"""The entry's fields before the metadata was packed (and ``traceparent`` when traced): still
read, since a stream written before an upgrade holds such entries until they are trimmed."""

_META_FIELD, _JSON_FIELD = META.encode(), JSON.encode()

_SHAPE = (str, str, str, int | None, str, int | None, int, str, int, str)
"""The types of the packed metadata's elements, in order (``pack_meta``)."""


def pack_meta(
    resource: str,
    event: str,
    event_key: str,
    cf_webhook_id: int | None,
    cf_webhook_name: str,
    timestamp: int | None,
    received_at: int,
    callback: str,
    index: int,
    traceparent: str,
) -> bytes:
    """THE format of an entry's ``m`` field: a JSON array of the metadata, in this order (absent
    ids and timestamps are ``null``). JSON, so any text round-trips unchanged (a webhook name is
    free text). Two fields per entry rather than one per value: Redis stores, reads and sends
    each field of every entry, and the script and the readers handle two, not ten or eleven. A later
    change may append elements (readers ignore what they do not know), never reorder them.
    Raises ``orjson.JSONEncodeError`` (a TypeError) on text that is not Unicode (a lone
    surrogate) or an integer past 64 bits, which ``relay.ingest.parsing`` never lets through."""
    meta = (
        resource, event, event_key, cf_webhook_id, cf_webhook_name, timestamp, received_at,
        callback, index, traceparent,
    )  # fmt: skip
    return orjson.dumps(meta)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """What one stream entry holds: its metadata packed in ``m`` (``pack_meta``), its JSON in
    ``json`` (``to_fields``)."""

    resource: str
    event: str
    """The event type as CallFire sent it."""
    event_key: str
    """Its normalised form, for matching."""
    cf_webhook_id: int | None
    cf_webhook_name: str
    timestamp: int | None
    received_at: int
    callback: str
    """Hex SHA-256 of the callback body the event came in."""
    index: int
    json: bytes
    """The event's JSON exactly as CallFire sent it."""
    traceparent: str = ""
    """The W3C trace context of its callback's trace (``relay.tracing``); empty when not traced."""

    def packed(self) -> bytes:
        """The ``m`` field's value."""
        return pack_meta(
            self.resource, self.event, self.event_key, self.cf_webhook_id, self.cf_webhook_name,
            self.timestamp, self.received_at, self.callback, self.index, self.traceparent,
        )  # fmt: skip

    def to_fields(self) -> dict[str, str | bytes | int]:
        """The entry's fields (the ingest script writes the same, ``relay.store.scripts.INGEST``)."""
        return {META: self.packed(), JSON: self.json}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> StreamEvent:
        """The event of an entry in either format (``to_fields``, or ``LEGACY_FIELDS``). Raises
        KeyError or ValueError on an entry that is not an event (a poison entry)."""
        packed = fields.get(_META_FIELD)
        if packed is None:
            return cls._from_legacy(fields)
        meta = orjson.loads(packed)
        if not isinstance(meta, list) or len(meta) < len(_SHAPE):
            raise ValueError("the packed metadata is not an array of its ten values")
        for value, kind in zip(meta, _SHAPE, strict=False):
            if not isinstance(value, kind) or value is True or value is False:
                raise ValueError(f"the packed metadata holds {value!r:.40} where a {kind} belongs")
        resource, event, key, cf_id, name, timestamp, received_at, callback, index, traceparent = meta[:10]
        return cls(
            resource=resource, event=event, event_key=key, cf_webhook_id=cf_id, cf_webhook_name=name,
            timestamp=timestamp, received_at=received_at, callback=callback, index=index,
            json=fields[_JSON_FIELD], traceparent=traceparent,
        )  # fmt: skip

    @classmethod
    def _from_legacy(cls, fields: dict[bytes, bytes]) -> StreamEvent:
        """An entry written before the metadata was packed: one field per value."""
        cf_id, ts = fields[b"cf_webhook_id"], fields[b"timestamp"]
        return cls(
            resource=fields[b"resource"].decode(),
            event=fields[b"event"].decode(),
            event_key=fields[b"event_key"].decode(),
            cf_webhook_id=int(cf_id) if cf_id else None,
            cf_webhook_name=fields[b"cf_webhook_name"].decode(),
            timestamp=int(ts) if ts else None,
            received_at=int(fields[b"received_at"]),
            callback=fields[b"callback"].decode(),
            index=int(fields[b"index"]),
            json=fields[b"json"],
            traceparent=fields.get(b"traceparent", b"").decode(errors="replace"),
        )

    @property
    def id(self) -> str:
        """The event's id: stable (a repeat of the callback body is the same event) and unique
        across partitions, the callback's digest and the event's index, as in ``webhook-id``."""
        return event_id(self.callback, self.index)

    def delivery_id(self, webhook_id: int) -> str:
        """The ``webhook-id`` of this event's delivery to one webhook: the same on every retry,
        and for a repeat of the same callback body."""
        return f"msg_{self.callback[:32]}_{self.index}_{webhook_id}"


def event_id(callback: str, index: int | str) -> str:
    """``StreamEvent.id`` from its callback digest (hex) and its index. Pure."""
    return f"evt_{callback[:32]}_{index}"


EVENT_ID = re.compile(r"evt_([0-9a-f]{32})_([0-9]{1,9})")
"""What ``StreamEvent.id`` looks like."""


def resource_id(event_json: bytes) -> str | None:
    """The text of ``resource.id`` in an event's JSON, exactly as sent (an id past 2**53 is never
    turned into a float), or None when the event has none. Pure."""
    try:
        data = json.loads(event_json, parse_int=str, parse_float=str)
    except ValueError:
        return None
    resource = data.get("resource") if isinstance(data, dict) else None
    found = resource.get("id") if isinstance(resource, dict) else None
    return found if isinstance(found, str) else None


def events_of(callback: Callback, received_at: int, traceparent: str = "") -> list[StreamEvent]:
    digest = callback.digest.hex()
    return [
        StreamEvent(
            resource=e.resource_type,
            event=e.event_type,
            event_key=event_key(e.event_type),
            cf_webhook_id=callback.webhook_id,
            cf_webhook_name=callback.webhook_name or "",
            timestamp=e.timestamp,
            received_at=received_at,
            callback=digest,
            index=n,
            json=e.text,
            traceparent=traceparent,
        )
        for n, e in enumerate(callback.events)
    ]


def entries_of(callback: Callback, received_at: int, traceparent: str = "") -> list[tuple[bytes, bytes]]:
    """Per event of the callback, its entry's ``m`` and ``json`` values (``to_fields``), in order."""
    return [(e.packed(), e.json) for e in events_of(callback, received_at, traceparent)]


def outbound_body(event: StreamEvent, webhook_id: int, webhook_name: str) -> bytes:
    """CallFire's callback envelope with the relay's identity, the event's JSON untouched."""
    timestamp = event.timestamp if event.timestamp is not None else event.received_at
    head = orjson.dumps(
        {
            "timestamp": timestamp,
            "webhookId": webhook_id,
            "webhookName": webhook_name,
            "resourceType": event.resource,
        }
    )
    return head[:-1] + b',"events":[' + event.json + b"]}"
