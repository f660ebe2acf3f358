"""The webhook table on Redis: one hash of id -> JSON (secret included), listing indexes, a version.

With ``RELAY_SECRET_KEYS`` set, every write seals the webhook's secret first
(``relay.webhooks.sealing``): a plain-text secret left from before is sealed the next time its
webhook is written, and no secret reaches Redis in plain text. Reads leave secrets sealed; the
worker's view opens them.

Every write is one Lua script on the ``{webhooks}`` hash tag: it checks the webhook is still what
the writer read (compare-and-set), writes or deletes it, moves its index entries and bumps
``keys.webhooks_version``, all at once. A reader never sees a half-written webhook or a stale
index entry; two writers racing both succeed, one after the other, each re-reading on conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import structlog
from pydantic import ValidationError

from relay.keys import Keys
from relay.secrets import SecretKeys
from relay.store.connect import RedisClient
from relay.store.scripts import WRITE, run
from relay.webhooks.model import Webhook, WebhookSpec, stored
from relay.webhooks.query import WebhookQuery, index_terms
from relay.webhooks.sealing import reseal, seal

log = structlog.get_logger("relay.webhooks")

_MAX_TRIES = 50


Change = WebhookSpec | Callable[[WebhookSpec], WebhookSpec]
"""A new spec, or a function of the current one (called again if a concurrent write won)."""


class ConflictError(RuntimeError):
    """The write lost to concurrent writers too many times in a row."""


class _Unchanged(Exception):
    """``set_enabled`` found the webhook switched as asked already: nothing to write."""


class NameTakenError(ValueError):
    """``create(..., unique_name=True)`` found a webhook of that name already."""


Resealed = Literal["resealed", "current", "unreadable", "gone"]
"""What ``reseal`` did: rewrote the secret under the first key; found it there already (or no
secret); found it sealed under no configured key; found no such webhook."""


class WebhookStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, secret_keys: SecretKeys | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.secret_keys = secret_keys or SecretKeys()

    async def create(self, spec: WebhookSpec, now_ms: int, *, unique_name: bool = False) -> Webhook:
        """Store a new webhook under a fresh id (``INCR keys.webhook_seq``)."""
        webhook_id = int(await self.redis.incr(self.keys.webhook_seq))
        webhook = stored(spec, webhook_id=webhook_id, created_at=now_ms, now_ms=now_ms)
        unique = f"name:{spec.name}" if unique_name and spec.name is not None else None
        outcome = await self._write(webhook_id, None, webhook, unique=unique)
        if outcome < 0:
            raise NameTakenError(f"a webhook named {spec.name!r} exists already")
        if outcome == 0:  # pragma: no cover - the id is fresh: nobody else writes it
            raise ConflictError(f"webhook {webhook_id} exists already")
        return webhook

    async def get(self, webhook_id: int) -> Webhook | None:
        raw = await self.redis.hget(self.keys.webhooks, str(webhook_id))
        return None if raw is None else parse(webhook_id, raw)

    async def all(self) -> list[Webhook]:
        """Every webhook, by id."""
        return _parse_table(await self.redis.hgetall(self.keys.webhooks))

    async def update(self, webhook_id: int, change: Change, now_ms: int) -> Webhook | None:
        """Replace the writable fields; None when there is no such webhook. A callable ``change``
        may raise (e.g. ``ValidationError``): nothing is written then."""

        def replaced(current: Webhook) -> Webhook:
            spec = change(current.spec()) if callable(change) else change
            return stored(spec, webhook_id=webhook_id, created_at=current.created_at, now_ms=now_ms)

        return await self._replace(webhook_id, replaced)

    async def reseal(self, webhook_id: int) -> Resealed:
        """Rewrite the webhook's secret sealed under the first key (``relay secrets reencrypt``);
        nothing else changes, ``updatedAt`` included. Needs ``secret_keys``."""
        fernet = self.secret_keys.fernet
        if fernet is None:
            raise ValueError("RELAY_SECRET_KEYS is not set: there is no key to seal with")
        first = self.secret_keys.first
        outcome: Resealed = "gone"

        def resealed(current: Webhook) -> Webhook:
            nonlocal outcome
            outcome = "current"
            if current.secret is None:
                return current
            secret = reseal(current.secret, fernet, first)
            if secret is None:
                outcome = "unreadable"
            elif secret is not current.secret:
                outcome = "resealed"
                return current.model_copy(update={"secret": secret})
            return current

        written = await self._replace(webhook_id, resealed, skip_unchanged=True)
        return outcome if written is not None else "gone"

    async def _replace(
        self, webhook_id: int, make: Callable[[Webhook], Webhook], *, skip_unchanged: bool = False
    ) -> Webhook | None:
        """Write ``make(current)`` over the webhook, re-reading on conflict; None when there is no
        such webhook. ``skip_unchanged``: write nothing when ``make`` returns ``current`` itself."""
        for _ in range(_MAX_TRIES):
            raw = await self.redis.hget(self.keys.webhooks, str(webhook_id))
            if raw is None:
                return None
            current = Webhook.from_storage(raw)
            new = make(current)
            if skip_unchanged and new is current:
                return new
            if await self._write(webhook_id, (raw, current), new) > 0:
                return new
        raise ConflictError(f"webhook {webhook_id} is being changed by too many writers at once")

    async def delete(self, webhook_id: int) -> bool:
        for _ in range(_MAX_TRIES):
            raw = await self.redis.hget(self.keys.webhooks, str(webhook_id))
            if raw is None:
                return False
            if await self._write(webhook_id, (raw, Webhook.from_storage(raw)), None) > 0:
                return True
        raise ConflictError(f"webhook {webhook_id} is being changed by too many writers at once")

    async def set_enabled(self, webhook_id: int, enabled: bool, now_ms: int) -> bool:
        """Switch a webhook on or off (delivery switches it off on 410 Gone). True when this call
        changed it; False when there is no such webhook or it was so already: of several callers
        racing to switch it, exactly one sees True."""

        def switched(spec: WebhookSpec) -> WebhookSpec:
            if spec.enabled == enabled:
                raise _Unchanged
            return spec.model_copy(update={"enabled": enabled})

        try:
            return await self.update(webhook_id, switched, now_ms) is not None
        except _Unchanged:
            return False

    async def version(self) -> int:
        return int(await self.redis.get(self.keys.webhooks_version) or 0)

    async def snapshot(self) -> tuple[int, dict[int, bytes]]:
        """The version and every webhook as stored (id -> JSON, ``parse`` reads one), read in one
        transaction (so they agree)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.keys.webhooks_version)
        pipe.hgetall(self.keys.webhooks)
        version, table = await pipe.execute()
        return int(version or 0), {int(key): raw for key, raw in table.items()}

    async def find(self, query: WebhookQuery) -> tuple[int, list[Webhook]]:
        """The total count of matches and the page ``[offset, offset + limit)`` of them, by id.

        One filter (or none) reads only its page of one index; several intersect their indexes.
        """
        sets = [self.keys.webhook_index(term) for term in query.terms()]
        if len(sets) == 1:
            total, members = await self._page_of(sets[0], query.offset, query.limit)
        else:
            # redis-py types zinter's keys as a union list[str] does not match
            every: list[bytes | str] = list(await self.redis.zinter(sets))  # type: ignore[arg-type]
            total, members = len(every), every[query.offset : query.offset + query.limit]
        if not members:
            return int(total), []
        page = [int(member) for member in members]
        raws = await self.redis.hmget(self.keys.webhooks, [str(i) for i in page])
        found = [parse(i, raw) for i, raw in zip(page, raws, strict=True) if raw is not None]
        return int(total), [webhook for webhook in found if webhook is not None]

    async def _page_of(self, index: str, offset: int, limit: int) -> tuple[int, list[bytes | str]]:
        """The size of one index and the ids ``[offset, offset + limit)`` of it, read together."""
        if limit <= 0:
            return int(await self.redis.zcard(index)), []
        pipe = self.redis.pipeline(transaction=True)
        pipe.zcard(index)
        pipe.zrange(index, offset, offset + limit - 1)
        total, members = await pipe.execute()
        return int(total), list(members)

    async def _write(
        self,
        webhook_id: int,
        current: tuple[bytes | str, Webhook] | None,
        new: Webhook | None,
        *,
        unique: str | None = None,
    ) -> int:
        """1 when written; 0 when the stored webhook is no longer ``current``; -1 when ``unique``'s
        index set is not empty."""
        leave = index_terms(current[1]) if current is not None else []
        join = index_terms(new) if new is not None else []
        sets = [self.keys.webhook_index(term) for term in [*leave, *join]]
        position = 3 + len(leave) + join.index(unique) if unique is not None else 0
        keys = [self.keys.webhooks, self.keys.webhooks_version, *sets]
        args = [
            webhook_id,
            current[0] if current is not None else "",
            self._sealed(new).to_storage() if new is not None else "",
            len(leave),
            position,
        ]
        return int(await run(self.redis, WRITE, keys, args))

    def _sealed(self, webhook: Webhook) -> Webhook:
        """The webhook as it is written: its secret sealed when there are keys."""
        fernet = self.secret_keys.fernet
        if fernet is None or webhook.secret is None:
            return webhook
        return webhook.model_copy(update={"secret": seal(webhook.secret, fernet)})


def parse(webhook_id: int, raw: bytes | str) -> Webhook | None:
    """One stored webhook; None (logged) when it cannot be read."""
    try:
        return Webhook.from_storage(raw)
    except (ValidationError, ValueError):  # orjson.JSONDecodeError is a ValueError
        log.error("unreadable webhook in redis, skipped", webhook_id=webhook_id)
        return None


def _parse_table(table: Mapping[bytes | str, bytes | str]) -> list[Webhook]:
    found = [parse(int(key), raw) for key, raw in table.items()]
    return sorted((w for w in found if w is not None), key=lambda w: w.id)
