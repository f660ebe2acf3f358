"""Recent delivery attempts, per webhook and per event: capped lists, newest first, written in
batches.

Each webhook's log and each event's log is one list under its own hash tag. Records are appended
through a caller's pipeline (the delivery completer batches them with acknowledgements), trimmed
to the newest ``kept``. A webhook's log expires a while after its last write, so the log of a
deleted webhook goes away; an event's log expires ``event_ttl_ms`` (the stream retention) after
its last write, so it outlives the event on the stream. An event's log also holds, oldest, the
webhooks the event matched when a worker first read it (``matched_record``), written with the
event's first attempt record or with its acknowledgement, whichever comes first, so that most
events cost Redis one LPUSH and one PEXPIRE. The batching writer leaves out the LTRIM of an
event's log (``queue_event(trim=False)``) and trims the few logs its LPUSH says went past
``kept`` in its next batch (``trim_event``).
A delivery notes its attempt as an ``AttemptRecord`` (a tuple); only the newest ``kept`` of a
batch are ever serialised.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from relay.keys import Keys
from relay.store.connect import RedisClient

LOG_TTL_MS = 30 * 86400 * 1000
"""A webhook's log is dropped this long after its last attempt."""


ANSWER_KEPT = 1024
"""Bytes of a failed attempt's answer kept in its record."""
MATCHED = "matched"
"""The ``outcome`` of an event log's record of the webhooks the event matched."""


def attempt_record(
    *,
    at: int,
    delivery_id: str,
    attempt: int,
    outcome: str,
    status: int | None,
    seconds: float,
    error: str | None,
    webhook_id: int | None = None,
    retry_at: int | None = None,
    answer: bytes = b"",
) -> bytes:
    """One record, as stored and as ``GET /v2/webhooks/{id}/deliveries`` returns it. Pure.
    ``answer``: the answer's first bytes, kept (as text) only for an attempt that was not 2xx."""
    failed = status is None or not 200 <= status < 300
    return orjson.dumps(
        {
            "at": at,
            "deliveryId": delivery_id,
            "attempt": attempt,
            "outcome": outcome,
            "status": status,
            "latencyMs": round(seconds * 1000, 3),
            "error": error,
            "webhookId": webhook_id,
            "retryAt": retry_at,
            "answer": answer[:ANSWER_KEPT].decode(errors="replace") if failed and answer else None,
        }
    )


def matched_record(*, at: int, webhook_ids: list[int], entry: str) -> bytes:
    """The record of the webhooks an event matched, and its stream entry (``partition/id``). Pure."""
    return orjson.dumps({"at": at, "outcome": MATCHED, "webhookIds": webhook_ids, "entry": entry})


class AttemptRecord(NamedTuple):
    at: int
    """Unix ms."""
    delivery_id: str
    attempt: int
    outcome: str
    status: int | None
    seconds: float
    error: str | None
    webhook_id: int | None = None
    event_id: str = ""
    """The log of this event gets the record too."""
    retry_at: int | None = None
    """When the next attempt is due (unix ms), for a record of outcome ``retry``."""
    answer: bytes = b""

    def dumps(self) -> bytes:
        return attempt_record(
            at=self.at,
            delivery_id=self.delivery_id,
            attempt=self.attempt,
            outcome=self.outcome,
            status=self.status,
            seconds=self.seconds,
            error=self.error,
            webhook_id=self.webhook_id,
            retry_at=self.retry_at,
            answer=self.answer,
        )


class Attempts:
    def __init__(self, *, redis: RedisClient, keys: Keys, kept: int, event_ttl_ms: int = 3_600_000) -> None:
        self.redis = redis
        self.keys = keys
        self.kept = kept
        self.event_ttl_ms = max(1, event_ttl_ms)

    def queue(self, pipe: Any, webhook_id: int, records: list[bytes]) -> None:
        """Add ``records`` (oldest first) to ``pipe``: pushed, trimmed, expiry renewed."""
        if self.kept <= 0 or not records:
            return
        key = self.keys.attempts(webhook_id)
        pipe.lpush(key, *records[-self.kept :])
        pipe.ltrim(key, 0, self.kept - 1)
        pipe.pexpire(key, LOG_TTL_MS)

    def queue_event(self, pipe: Any, event_id: str, records: list[bytes], *, trim: bool = True) -> None:
        """Add ``records`` (oldest first) to one event's log through ``pipe``: LPUSH (its reply,
        the log's length, is the first of the commands added), LTRIM when ``trim``, PEXPIRE."""
        if self.kept <= 0 or not records:
            return
        key = self.keys.outcomes(event_id)
        pipe.lpush(key, *records[-self.kept :])
        if trim:
            pipe.ltrim(key, 0, self.kept - 1)
        pipe.pexpire(key, self.event_ttl_ms)

    def trim_event(self, pipe: Any, event_id: str) -> None:
        """Cut one event's log to its newest ``kept`` records, through ``pipe``."""
        pipe.ltrim(self.keys.outcomes(event_id), 0, self.kept - 1)

    async def of_events(self, event_ids: list[str]) -> list[list[Any]]:
        """Each event's log, newest first."""
        if not event_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.lrange(self.keys.outcomes(event_id), 0, -1)
        found = await pipe.execute()
        return [[orjson.loads(raw) for raw in raws] for raws in found]

    async def history(self, event_id: str, delivery_id: str) -> list[bytes]:
        """One delivery's records in its event's log, newest first, as stored."""
        raws: Any = await self.redis.lrange(self.keys.outcomes(event_id), 0, -1)
        wanted = orjson.dumps(delivery_id)
        return [bytes(raw) for raw in raws if b'"deliveryId":' + wanted in raw]

    async def add(self, webhook_id: int, records: list[bytes]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self.queue(pipe, webhook_id, records)
        await pipe.execute()

    async def recent(self, webhook_id: int, offset: int = 0, limit: int = 100) -> tuple[int, list[Any]]:
        """The total kept and the page ``[offset, offset + limit)``, newest first."""
        key = self.keys.attempts(webhook_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(key)
        pipe.lrange(key, offset, offset + limit - 1)
        total, raws = await pipe.execute()
        return int(total), [orjson.loads(raw) for raw in raws]

    async def newest(self, webhook_ids: list[int], count: int) -> dict[int, list[bytes]]:
        """Up to ``count`` newest records of each webhook, as stored (newest first), in one round
        trip."""
        if not webhook_ids or count <= 0:
            return {webhook_id: [] for webhook_id in webhook_ids}
        pipe = self.redis.pipeline(transaction=False)
        for webhook_id in webhook_ids:
            pipe.lrange(self.keys.attempts(webhook_id), 0, count - 1)
        found = await pipe.execute()
        return {webhook_id: list(raws) for webhook_id, raws in zip(webhook_ids, found, strict=True)}
