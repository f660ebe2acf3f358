"""Recent delivery attempts per webhook: a capped list, newest first, written in batches.

Each webhook's log is one list under its own hash tag. Records are appended through a caller's
pipeline (the delivery completer batches them with acknowledgements), trimmed to the newest
``kept``, and expire a while after the last write, so the log of a deleted webhook goes away.
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


def attempt_record(
    *,
    at: int,
    delivery_id: str,
    attempt: int,
    outcome: str,
    status: int | None,
    seconds: float,
    error: str | None,
) -> bytes:
    """One record, as stored and as ``GET /v2/webhooks/{id}/deliveries`` returns it. Pure."""
    return orjson.dumps(
        {
            "at": at,
            "deliveryId": delivery_id,
            "attempt": attempt,
            "outcome": outcome,
            "status": status,
            "latencyMs": round(seconds * 1000, 3),
            "error": error,
        }
    )


class AttemptRecord(NamedTuple):
    at: int
    """Unix ms."""
    delivery_id: str
    attempt: int
    outcome: str
    status: int | None
    seconds: float
    error: str | None

    def dumps(self) -> bytes:
        return attempt_record(
            at=self.at,
            delivery_id=self.delivery_id,
            attempt=self.attempt,
            outcome=self.outcome,
            status=self.status,
            seconds=self.seconds,
            error=self.error,
        )


class Attempts:
    def __init__(self, redis: RedisClient, keys: Keys, kept: int) -> None:
        self.redis = redis
        self.keys = keys
        self.kept = kept

    def queue(self, pipe: Any, webhook_id: int, records: list[bytes]) -> None:
        """Add ``records`` (oldest first) to ``pipe``: pushed, trimmed, expiry renewed."""
        if self.kept <= 0 or not records:
            return
        key = self.keys.attempts(webhook_id)
        pipe.lpush(key, *records[-self.kept :])
        pipe.ltrim(key, 0, self.kept - 1)
        pipe.pexpire(key, LOG_TTL_MS)

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
