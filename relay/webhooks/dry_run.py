"""A dry run: which retained events a webhook would have received, and the body each would get.
Pure: it is fed stored entries (``relay.store.history``) and sends nothing.

The webhook is a ``Webhook`` that is never stored (``candidate``: id 0, no name, a callback
nobody calls). Matching is the worker's own (``relay.webhooks.matching.wants``), and so is the
body (``relay.delivery.message.Prepared.body``: CallFire's envelope trimmed by ``fields``), with
``webhookId`` 0 and an empty ``webhookName``, since the webhook may not exist yet. Whether it is
enabled or expired does not enter into it. An event whose body the worker could not build (it
would be dead-lettered) is not counted; an entry that is not an event (a poison entry) is
scanned and skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from relay.delivery.message import Prepared
from relay.events import StreamEvent
from relay.webhooks.matching import wants
from relay.webhooks.model import Webhook

SCAN_LIMIT = 1_000_000
"""Most entries one dry run looks at; past them the answer says ``truncated``."""
SAMPLE_SIZE = 20
"""How many of the matching events the answer shows, oldest first."""
UNCALLED = "http://dry-run.invalid/"
"""A dry run's webhook's callback: never called (``.invalid`` cannot resolve, RFC 2606)."""


def candidate(
    *, resource: str, events: tuple[str, ...], filter_: dict[str, Any] | None, fields: str | None
) -> Webhook:
    """The webhook a dry run tries: never stored, never called."""
    return Webhook(
        id=0, resource=resource, events=events, callback=UNCALLED, filter=filter_, fields=fields,
        created_at=0, updated_at=0,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sample:
    entry_id: str
    received_at: int
    body: bytes


@dataclass(kw_only=True)
class DryRun:
    webhook: Webhook
    limit: int = SCAN_LIMIT
    sample_size: int = SAMPLE_SIZE
    scanned: int = 0
    total: int = 0
    truncated: bool = False
    samples: list[Sample] = field(default_factory=list)
    _prepared: Prepared = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._prepared = Prepared(self.webhook)

    def feed(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """Look at one stored entry."""
        self.scanned += 1
        try:
            event = StreamEvent.from_fields(fields)
        except (KeyError, ValueError):
            return
        if not wants(self.webhook, event):
            return
        try:
            body = self._prepared.body(event)
        except (ValueError, TypeError):
            return
        self.total += 1
        if len(self.samples) < self.sample_size:
            self.samples.append(Sample(entry_id.decode(), event.received_at, body))

    async def scan(self, entries: AsyncIterable[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Feed ``entries`` until they end or ``limit`` are scanned (then ``truncated`` if any
        entry is left)."""
        async for entry_id, fields in entries:
            if self.scanned >= self.limit:
                self.truncated = True
                return
            self.feed(entry_id, fields)

    def answer(self) -> dict[str, Any]:
        """``{"totalCount", "scanned", "truncated", "items"}``; each body is the exact JSON."""
        items = [
            {"entryId": s.entry_id, "receivedAt": s.received_at, "body": orjson.Fragment(s.body)}
            for s in self.samples
        ]
        counts = {"totalCount": self.total, "scanned": self.scanned, "truncated": self.truncated}
        return {**counts, "items": items}
