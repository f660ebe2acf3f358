"""The dead-letter stream: deliveries given up on, and poison entries, kept until replayed or purged.

An entry holds why (``kind``, ``reason``), the attempts made, the last status or error, and the
event's own stream fields, so a replay puts the very same event back on a deliveries stream.
A poison entry (it could not be read as an event) keeps its raw fields as JSON instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient

KINDS = ("exhausted", "rejected", "gone", "refused", "disabled", "poison")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    kind: str
    reason: str
    webhook_id: int | None
    attempts: int
    last_status: int | None
    last_error: str
    at: int
    """Unix ms."""
    event: StreamEvent | None
    """None for a poison entry."""
    raw: str = ""
    """A poison entry's fields, as JSON."""

    @property
    def replayable(self) -> bool:
        return self.event is not None and self.webhook_id is not None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhookId": self.webhook_id,
            "kind": self.kind,
            "reason": self.reason,
            "attempts": self.attempts,
            "lastStatus": self.last_status,
            "lastError": self.last_error or None,
            "at": self.at,
        }


def letter_fields(
    *,
    kind: str,
    reason: str,
    at: int,
    webhook_id: int | None = None,
    attempts: int = 0,
    last_status: int | None = None,
    last_error: str = "",
    event: StreamEvent | None = None,
    raw: dict[bytes, bytes] | None = None,
) -> dict[str, Any]:
    """The fields of one dead-letter entry. Pure."""
    fields: dict[str, Any] = {
        "kind": kind,
        "reason": reason,
        "at": at,
        "webhook": "" if webhook_id is None else webhook_id,
        "attempts": attempts,
        "last_status": "" if last_status is None else last_status,
        "last_error": last_error,
    }
    if event is not None:
        fields.update(event.to_fields())
    if raw is not None:
        text = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}
        fields["raw"] = orjson.dumps(text)
    return fields


def parse_letter(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    """Pure; an event that does not parse is shown as poison."""
    try:
        event: StreamEvent | None = StreamEvent.from_fields(fields)
    except (KeyError, ValueError):
        event = None
    webhook = fields.get(b"webhook", b"")
    status = fields.get(b"last_status", b"")
    return DeadLetter(
        id=entry_id.decode(),
        kind=fields.get(b"kind", b"poison").decode(),
        reason=fields.get(b"reason", b"").decode(errors="replace"),
        webhook_id=int(webhook) if webhook.isdigit() else None,
        attempts=int(fields.get(b"attempts", b"0") or 0),
        last_status=int(status) if status.isdigit() else None,
        last_error=fields.get(b"last_error", b"").decode(errors="replace"),
        at=int(fields.get(b"at", b"0") or 0),
        event=event,
        raw=fields.get(b"raw", b"").decode(errors="replace"),
    )


class DeadLetters:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def add(self, fields: Any) -> str:
        entry_id: Any = await self.redis.xadd(self.keys.dead_letters, fields)
        return bytes(entry_id).decode()

    async def count(self) -> int:
        return int(await self.redis.xlen(self.keys.dead_letters))

    async def get(self, letter_id: str) -> DeadLetter | None:
        found: Any = await self.redis.xrange(self.keys.dead_letters, letter_id, letter_id, count=1)
        return parse_letter(*found[0]) if found else None

    async def page(self, after: str = "-", count: int = 100) -> list[DeadLetter]:
        """Up to ``count`` letters, oldest first, from ``after`` (exclusive; ``-``: the start)."""
        start = "-" if after == "-" else f"({after}"
        found: Any = await self.redis.xrange(self.keys.dead_letters, start, "+", count=count)
        return [parse_letter(i, f) for i, f in found]

    async def scan(self, webhook_id: int | None = None, batch: int = 500) -> AsyncIterator[DeadLetter]:
        """Every letter (of one webhook), oldest first, read in pages."""
        after = "-"
        while True:
            letters = await self.page(after, batch)
            for letter in letters:
                if webhook_id is None or letter.webhook_id == webhook_id:
                    yield letter
            if len(letters) < batch:
                return
            after = letters[-1].id

    async def delete(self, letter_ids: list[str]) -> int:
        if not letter_ids:
            return 0
        return int(await self.redis.xdel(self.keys.dead_letters, *letter_ids))

    async def replay(self, letter: DeadLetter) -> bool:
        """Put the letter's delivery back on its partition's deliveries stream as a first attempt,
        then drop the letter. False (nothing done) for a letter that cannot be replayed."""
        if letter.event is None or letter.webhook_id is None:
            return False
        try:
            digest = bytes.fromhex(letter.event.callback)
        except ValueError:
            digest = b""
        partition = self.keys.partition_of(digest)
        fields: Any = {"webhook": letter.webhook_id, "attempt": 1, **letter.event.to_fields()}
        await self.redis.xadd(self.keys.deliveries(partition), fields)
        await self.delete([letter.id])
        return True
