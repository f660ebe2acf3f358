"""A process's cached view of every webhook, brought up to the table's version counter on demand.

Read-your-writes: every change to the table bumps ``keys.webhooks_version`` before it is
answered. A worker calls ``refresh`` after each stream read that returned entries, and before it
matches them: one GET of the version, read after the entries were (so after their callbacks were
appended, so after any change answered before those callbacks were sent), and a reload only when
the view is behind it. That holds on Redis Cluster too, where the version and the streams sit in
different hash slots and no one script could read both: the order comes from the worker awaiting
one read before sending the next. A background poll (every ``poll_interval``) also refreshes, and
a delivery about to start calls ``current`` (a refresh only when the poll has fallen behind, as
on an overloaded machine), so none starts on a view older than that bound.

A worker's view holds webhooks with their secrets opened (``relay.webhooks.sealing``), so a
delivery decrypts nothing; a reload parses and opens only the webhooks whose stored JSON changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog

from relay import metrics
from relay.catalog import event_key
from relay.store.webhooks import WebhookStore, parse
from relay.webhooks import filters
from relay.webhooks.model import Webhook
from relay.webhooks.sealing import Opener, SealedSecret

log = structlog.get_logger("relay.webhooks")

Index = dict[tuple[str, str], tuple[Webhook, ...]]
Rows = dict[int, tuple[bytes, Webhook]]
"""id -> (the webhook's JSON as stored, the webhook with its secret opened)."""


def build_index(webhooks: Iterable[Webhook]) -> tuple[dict[int, Webhook], Index]:
    """By id, and by ``(resource, event_key)``, each list ordered by id; each filter compiled
    now (``Webhook.predicate``), not on the first event; one that does not compile is logged."""
    by_id: dict[int, Webhook] = {}
    by_event: dict[tuple[str, str], list[Webhook]] = {}
    for webhook in sorted(webhooks, key=lambda w: w.id):
        if webhook.predicate is filters.nothing:
            log.error("webhook filter does not compile; it receives nothing", webhook_id=webhook.id)
        by_id[webhook.id] = webhook
        for key in {event_key(e) for e in webhook.events}:
            by_event.setdefault((webhook.resource, key), []).append(webhook)
    return by_id, {key: tuple(items) for key, items in by_event.items()}


def behind(held: int | None, current: int) -> bool:
    """Whether a view holding version ``held`` must reload to reflect ``current``. Pure.

    Versions only grow, so an older ``current`` (read before a concurrent reload finished) needs
    nothing; 0 (no counter: Redis restarted empty) does, when the view holds anything else."""
    return held is None or current > held or (current == 0 and held != 0)


class WebhookView:
    """A process's cached view of all webhooks: reloaded when ``keys.webhooks_version`` moved
    past it, on demand (``refresh``) and every ``poll_interval`` (default 0.25 s)."""

    def __init__(
        self, store: WebhookStore, poll_interval: float = 0.25, *, opener: Opener | None = None
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.version: int | None = None
        """The table version the view holds; None before the first load."""
        self._by_id: dict[int, Webhook] = {}
        self._by_event: Index = {}
        self._rows: Rows = {}
        self.opener = opener
        """Opens the webhooks' sealed secrets (a worker's view); None: they are kept as stored."""
        self._task: asyncio.Task[None] | None = None
        self._loading: asyncio.Future[None] | None = None
        """The reload under way, shared by every caller that needs it."""
        self.read_at = float("-inf")
        """When (event-loop time) the version the view reflects was read: the GET was sent."""
        self._checking: asyncio.Future[None] | None = None
        """The refresh ``current`` started, shared by every caller of ``current``."""
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Load once (raising if Redis cannot be read), then poll in the background."""
        await self.refresh()
        self._stopping.clear()
        self._task = asyncio.create_task(self._poll_forever(), name="webhook-view")

    async def stop(self) -> None:
        """Stop polling. The event, not only the cancel, ends the loop: on Python 3.11 a cancel
        that lands as a redis-py call completes can be swallowed (``asyncio.wait_for``)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for pending in (self._loading, self._checking):
            if pending is not None:
                pending.cancel()

    async def refresh(self, version: int | None = None, read_at: float | None = None) -> None:
        """Bring the view up to the table as it is now: read the version (one GET) and reload if
        the view is behind it. Concurrent callers share one reload; each returns only once the
        view holds a version at least as new as the one it read. ``version``: the version as the
        caller read it (with the entries it read, in their round trip), no later than
        ``read_at`` (loop time): no GET then."""
        if version is None or read_at is None:
            read_at = asyncio.get_running_loop().time()
            version = await self.store.version()
        if behind(self.version, version):
            await self._catch_up(version)
        self.read_at = max(self.read_at, read_at)

    def fresh(self, within: float) -> bool:
        """Whether the view reflects the table as read less than ``within`` seconds ago."""
        return asyncio.get_running_loop().time() - self.read_at <= within

    async def current(self, within: float) -> None:
        """Refresh until the view is ``fresh(within)`` (at once if it is); concurrent callers
        share one refresh."""
        while not self.fresh(within):
            if self._checking is None:
                self._checking = asyncio.ensure_future(self.refresh())
                self._checking.add_done_callback(self._checked)
            await asyncio.shield(self._checking)

    def _checked(self, checking: asyncio.Future[None]) -> None:
        if self._checking is checking:
            self._checking = None
        if not checking.cancelled():
            checking.exception()  # retrieved: each caller that awaited it has it raised already

    async def _catch_up(self, version: int) -> None:
        if self._loading is not None:  # started before our read: it may predate the change
            await asyncio.shield(self._loading)
            if not behind(self.version, version):
                return
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._reload())
            self._loading.add_done_callback(self._loaded)
        await asyncio.shield(self._loading)  # started after our read: it reflects the change

    def _loaded(self, loading: asyncio.Future[None]) -> None:
        if self._loading is loading:
            self._loading = None
        if not loading.cancelled():
            loading.exception()  # retrieved: each caller that awaited it has it raised already

    async def _reload(self) -> None:
        """The table and its version, read together, become the view."""
        version, table = await self.store.snapshot()
        self._rows = self._opened(table)
        self._by_id, self._by_event = build_index(webhook for _, webhook in self._rows.values())
        self.version = version
        metrics.WEBHOOKS_CACHED.set(len(self._by_id))
        if self.opener is not None:
            sealed = sum(isinstance(w.secret, SealedSecret) for w in self._by_id.values())
            metrics.WEBHOOK_SECRETS_UNREADABLE.set(sealed)
        log.debug("webhook view reloaded", version=version, webhooks=len(self._by_id))

    def _opened(self, table: dict[int, bytes]) -> Rows:
        """The rows of ``table``: a webhook whose JSON is unchanged is kept as it was; the others
        are parsed and their secrets opened (an unreadable one is left sealed)."""
        rows: Rows = {}
        for webhook_id, raw in table.items():
            known = self._rows.get(webhook_id)
            if known is not None and known[0] == raw:
                rows[webhook_id] = known
                continue
            webhook = parse(webhook_id, raw)
            if webhook is not None:
                rows[webhook_id] = (raw, self.opened(webhook))
        return rows

    def opened(self, webhook: Webhook) -> Webhook:
        """``webhook`` with its secret opened, as the view holds its own (when it has an opener)."""
        return webhook if self.opener is None else self.opener.open(webhook)

    def matching(self, resource: str, event_key: str, now_ms: int) -> list[Webhook]:
        """The live webhooks watching ``event_key`` (``relay.catalog.event_key``) on ``resource``."""
        return [w for w in self._by_event.get((resource, event_key), ()) if w.live(now_ms)]

    def get(self, webhook_id: int) -> Webhook | None:
        return self._by_id.get(webhook_id)

    def all(self) -> list[Webhook]:
        """Every webhook of the view, by id."""
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    async def _poll_forever(self) -> None:
        failing = False
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the last view; say so once
                if not failing:
                    log.warning("webhook view cannot refresh", error=type(exc).__name__)
                failing = True
            else:
                if failing:
                    log.info("webhook view refreshing again")
                failing = False
