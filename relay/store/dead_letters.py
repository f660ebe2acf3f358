"""The dead-letter stream: deliveries given up on, and poison entries, kept until replayed or purged
(or, with ``RELAY_DEAD_LETTER_RETENTION``, until they are that old).

An entry holds why (``kind``, ``reason``), the attempts made (each one's record, as JSON), the last
status or error, and the event's own stream fields, so a replay puts the very same event back on
a deliveries stream. A poison entry (it could not be read as an event) keeps its raw fields as
JSON instead. The ``relay dead-letters`` commands and ``/v2/dead-letters`` both use this store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.redeliver import queue_delivery
from relay.store.streams import ENTRY_ID, is_entry_id

KINDS = ("exhausted", "rejected", "gone", "refused", "disabled", "secret-unreadable", "poison")
"""``rejected`` (a 3xx or 4xx answered once) is no longer written: every status but 410 is
retried now. Letters of that kind written before are still listed and replayed."""

LETTER_ID = ENTRY_ID
"""A dead letter's id is its stream entry id."""
is_letter_id = is_entry_id


SKEW_MS = 60_000
"""Letters are chosen by ``at`` (the worker's clock); the stream is read by entry id (Redis's
clock) this much wider on each side of a time window."""
BATCH = 500
NOT_FOUND = "no such dead letter"
POISON = "a poison letter holds no event and cannot be replayed"


@dataclass(frozen=True, slots=True, kw_only=True)
class LetterQuery:
    """Which letters: of one webhook, of one kind, written (``at``, unix ms) in a window."""

    webhook_id: int | None = None
    kind: str | None = None
    since: int | None = None
    until: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """Pure."""
        return (
            (self.webhook_id is None or letter.webhook_id == self.webhook_id)
            and (self.kind is None or letter.kind == self.kind)
            and (self.since is None or letter.at >= self.since)
            and (self.until is None or letter.at <= self.until)
        )

    def id_range(self) -> tuple[str, str]:
        """The entry ids to read, newest end first (``XREVRANGE``'s order)."""
        end = "+" if self.until is None else str(max(0, self.until + SKEW_MS))
        start = "-" if self.since is None else str(max(0, self.since - SKEW_MS))
        return end, start


@dataclass(frozen=True, slots=True, kw_only=True)
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
    history: bytes = b"[]"
    """Its attempts' records (``relay.store.attempts``), newest first, a JSON array."""

    @property
    def replayable(self) -> bool:
        """Not poison: it holds an event and its webhook."""
        return self.kind != "poison" and self.event is not None and self.webhook_id is not None

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

    def detail(self) -> dict[str, Any]:
        """The summary, the event (its JSON exact: ids past 2**53 stay integers) and the records
        of the attempts made (``history``, newest first), or a poison entry's raw fields."""
        record: dict[str, Any] = self.summary()
        record["history"] = orjson.Fragment(self.history)
        if self.event is not None:
            record["eventId"] = self.event.id
            webhook = self.webhook_id
            record["deliveryId"] = None if webhook is None else self.event.delivery_id(webhook)
            record["resourceType"] = self.event.resource
            record["eventType"] = self.event.event
            record["receivedAt"] = self.event.received_at
            record["event"] = orjson.Fragment(self.event.json)
        else:
            record["raw"] = self.raw
        return record


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
    history: list[bytes] | None = None,
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
    if history:
        fields["history"] = b"[" + b",".join(history) + b"]"
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
        history=fields.get(b"history", b"[]"),
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
        """The letter, or None (also for a text that is not a letter id)."""
        found = await self.get_many([letter_id])
        return found[0]

    async def get_many(self, letter_ids: list[str]) -> list[DeadLetter | None]:
        pipe = self.redis.pipeline(transaction=False)
        for letter_id in letter_ids:
            if is_entry_id(letter_id):
                pipe.xrange(self.keys.dead_letters, letter_id, letter_id, count=1)
        found = iter(await pipe.execute())
        out: list[DeadLetter | None] = []
        for letter_id in letter_ids:
            entries = next(found) if is_entry_id(letter_id) else []
            out.append(parse_letter(*entries[0]) if entries else None)
        return out

    async def scan(self, query: LetterQuery = LetterQuery(), batch: int = BATCH) -> AsyncIterator[DeadLetter]:
        """The letters ``query`` chooses, newest first, read in pages."""
        end, start = query.id_range()
        while True:
            found: Any = await self.redis.xrevrange(self.keys.dead_letters, end, start, count=batch)
            for entry_id, fields in found:
                letter = parse_letter(entry_id, fields)
                if query.matches(letter):
                    yield letter
            if len(found) < batch:
                return
            end = f"({found[-1][0].decode()}"

    async def find(self, query: LetterQuery, offset: int, limit: int) -> tuple[int, list[DeadLetter]]:
        """How many letters ``query`` chooses, and the page ``[offset, offset + limit)`` of them."""
        total, page = 0, []
        async for letter in self.scan(query):
            if offset <= total < offset + limit:
                page.append(letter)
            total += 1
        return total, page

    async def delete(self, letter_ids: list[str]) -> int:
        wanted = [i for i in letter_ids if is_entry_id(i)]
        if not wanted:
            return 0
        return int(await self.redis.xdel(self.keys.dead_letters, *wanted))

    async def replay(self, letters: list[DeadLetter]) -> tuple[int, list[tuple[str, str]]]:
        """Put each letter's delivery back on its partition's deliveries stream as a first attempt
        (its ``webhook-id`` unchanged), then drop the letters; in batches, each written before its
        letters are deleted (a crash between may deliver twice, never lose). How many were
        replayed, and the ``(id, reason)`` of those that cannot be (poison letters)."""
        skipped = [(letter.id, POISON) for letter in letters if not letter.replayable]
        chosen = [letter for letter in letters if letter.replayable]
        for start in range(0, len(chosen), BATCH):
            batch = chosen[start : start + BATCH]
            pipe = self.redis.pipeline(transaction=False)
            for letter in batch:
                assert letter.event is not None and letter.webhook_id is not None
                queue_delivery(pipe, self.keys, letter.webhook_id, letter.event)
            await pipe.execute()
            await self.delete([letter.id for letter in batch])
        return len(chosen), skipped

    async def replay_ids(self, letter_ids: list[str]) -> tuple[int, list[tuple[str, str]]]:
        """``replay`` of the letters named; an unknown id is skipped, with its reason."""
        letter_ids = list(dict.fromkeys(letter_ids))
        found = await self.get_many(letter_ids)
        missing = [(i, NOT_FOUND) for i, letter in zip(letter_ids, found, strict=True) if letter is None]
        replayed, skipped = await self.replay([letter for letter in found if letter is not None])
        return replayed, missing + skipped

    async def replay_matching(self, query: LetterQuery) -> tuple[int, list[tuple[str, str]]]:
        """``replay`` of every letter ``query`` chooses."""
        return await self.replay([letter async for letter in self.scan(query)])

    async def trim(self, now_ms: int, retention_ms: int) -> int:
        """Drop the letters written longer than ``retention_ms`` ago; how many."""
        threshold = str(max(0, now_ms - retention_ms))
        return int(await self.redis.xtrim(self.keys.dead_letters, minid=threshold, approximate=False))
