"""One entry, start to finish: which deliveries it holds, each delivery's attempt, the entry's ack.

An events-stream entry fans out to every live webhook that matches it (a first attempt each);
a deliveries-stream entry is one delivery. Each delivery is one task running one coroutine
(``_deliver``); the common case (a known, live, ordinary webhook whose host has a free slot,
answering 2xx) awaits nothing but its POST; the slow paths are ``relay.delivery.unusual``'s. The
entry is completed (its retries scheduled and it acknowledged, in one step) once every one of its
deliveries is delivered, dead-lettered or scheduled; if anything fails on the way it stays
pending and is reclaimed.

The reader has reserved one slot of the process's capacity per entry; an entry's extra
deliveries take more, an entry with none gives its slot back, and each delivery gives its slot
back when it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from relay.clock import Clock
from relay.delivery.acks import Completer, Completion
from relay.delivery.capacity import Capacity
from relay.delivery.client import Sender
from relay.delivery.hosts import HostGates
from relay.delivery.message import Delivery, Prepared
from relay.delivery.outcomes import Outcomes
from relay.delivery.retry import Retry
from relay.delivery.single_use import SingleUse
from relay.delivery.throttle import Throttle
from relay.delivery.unusual import SlowPaths
from relay.events import StreamEvent
from relay.store.attempts import matched_record
from relay.store.streams import Entry
from relay.store.webhooks import WebhookStore
from relay.tracing import Tracing
from relay.webhooks.matching import wants
from relay.webhooks.model import Webhook
from relay.webhooks.sealing import SecretUnreadable
from relay.webhooks.view import WebhookView

log = structlog.get_logger("relay.delivery")

FRESH_VIEW = 0.5
"""An attempt starts only on a webhook view reflecting the table as read at most this many
seconds before: none reaches a webhook more than this after its delete was answered, however
late the event loop runs (the view's poll keeps it fresher; only a lagging one waits)."""

Plan = list[tuple[Delivery, Webhook | None]]
EntryKey = tuple[int, bool, bytes]


class _Pending:
    """An entry whose deliveries are under way."""

    __slots__ = ("entry", "event_id", "failed", "key", "left", "retries")

    def __init__(self, entry: Entry, key: EntryKey, left: int, event_id: str = "") -> None:
        self.entry = entry
        self.key = key
        self.left = left
        self.event_id = event_id
        self.retries: list[Retry] = []
        self.failed: BaseException | None = None


@dataclass(kw_only=True)
class Dispatcher(SlowPaths):
    view: WebhookView
    store: WebhookStore
    sender: Sender
    hosts: HostGates
    single_use: SingleUse
    throttle: Throttle
    outcomes: Outcomes
    completer: Completer
    capacity: Capacity
    clock: Clock
    budget: float
    """Bound on the Redis calls of one delivery's slow paths; past it the entry is left pending."""
    in_flight: dict[EntryKey, _Pending] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _prepared: dict[int, Prepared] = field(default_factory=dict)
    tracing: Tracing = field(default_factory=Tracing)

    def dispatch(self, entry: Entry) -> None:
        """Start handling ``entry``, for which one slot is reserved (unless it is being handled
        already, e.g. reclaimed: the slot is given back)."""
        key = (entry.partition, entry.replay, entry.id)
        if key in self.in_flight:
            self.capacity.give(1)
            return
        try:
            event_id, plan = self.plan(entry)
        except (KeyError, ValueError) as exc:
            pending = self.in_flight[key] = _Pending(entry, key, 1)
            self._spawn(self._poison(pending, exc))
            return
        if not plan:
            self.capacity.give(1)
            self.completer.complete(Completion(entry, event_id=event_id))  # no webhook wants it
            return
        if len(plan) > 1:
            self.capacity.take(len(plan) - 1)
        pending = self.in_flight[key] = _Pending(entry, key, len(plan), event_id)
        for delivery, webhook in plan:
            self._spawn(self._deliver(pending, delivery, webhook))

    def plan(self, entry: Entry) -> tuple[str, Plan]:
        """The id of the event an events-stream entry holds ("" for a delivery's entry: its
        completion releases no matched record) and the deliveries it holds. Raises KeyError or
        ValueError on a poison entry."""
        if entry.replay:
            delivery = Delivery.from_fields(entry.fields)
            return "", [(delivery, self.view.get(delivery.webhook_id))]
        event = StreamEvent.from_fields(entry.fields)
        now_ms = self.clock.now_ms()
        hooks = [w for w in self.view.matching(event.resource, event.event_key, now_ms) if wants(w, event)]
        where = f"{entry.partition}/{entry.id.decode()}"
        record = matched_record(at=now_ms, webhook_ids=[w.id for w in hooks], entry=where)
        self.completer.matched(event.id, record)
        return event.id, [(Delivery(w.id, 1, event), w) for w in hooks]

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.capacity.give(1)

    async def _deliver(self, pending: _Pending, delivery: Delivery, webhook: Webhook | None) -> None:
        """One delivery: the whole of the common case here, the rest in ``_unusual``."""
        retry: Retry | None = None
        try:
            now = self.clock.now()
            if webhook is None or webhook.single_use or not webhook.live(int(now * 1000)):
                async with asyncio.timeout(self.budget):
                    retry = await self._unusual(delivery, webhook)
            else:
                retry = await self._ordinary(delivery, webhook, now)
        except BaseException as exc:  # the entry stays pending (reclaimed), or we are cancelled
            pending.failed = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._one_done(pending, retry)

    async def _ordinary(self, delivery: Delivery, webhook: Webhook, now: float) -> Retry | None:
        prepared = self.prepared(webhook)
        try:
            request = prepared.request(delivery, now)
        except SecretUnreadable:
            async with asyncio.timeout(self.budget):
                return await self.outcomes.secret_unreadable(delivery)
        except (ValueError, TypeError) as exc:
            await self._unbuildable(delivery, exc)
            return None
        if webhook.rate_limit is not None and not self.throttle.try_take(webhook.id, webhook.rate_limit):
            later = await self._throttled(delivery, webhook.id, webhook.rate_limit)
            if later is not None:
                return later
        host = prepared.host
        if not (self.hosts.try_enter(host) or await self.hosts.enter(host)):
            return self._defer(delivery, "host_busy", self.hosts.expected_wait(host))
        if not self.view.fresh(FRESH_VIEW):
            try:
                await self.view.current(FRESH_VIEW)
            except BaseException:
                self.hosts.leave(host)
                raise
        now_webhook = self.view.get(webhook.id)
        if now_webhook is not webhook and now_webhook != webhook:
            # deleted or changed since the entry was matched (it waited for its host, or for the
            # event loop): go by what it is now
            self.hosts.leave(host)
            async with asyncio.timeout(self.budget):
                return await self._unusual(delivery, now_webhook)
        try:
            if not self.outcomes.breakers.may_skip(webhook.id):  # checked once its host is free
                async with asyncio.timeout(self.budget):
                    held, later = await self._held(delivery)
                if held:
                    self.hosts.leave(host)
                    return later
            result = await (self._traced(delivery, request) if self.tracing.on else self.sender.send(request))
        except BaseException:
            self.hosts.leave(host)
            raise
        self.hosts.leave(host, None if result.refused else result.seconds)
        if 200 <= (result.status or 0) < 300:
            self.outcomes.delivered(delivery, result)
            if not self.outcomes.breakers.may_skip(webhook.id):
                self.outcomes.breaker_succeeded(delivery, webhook, result)
            return None
        async with asyncio.timeout(self.budget):
            return await self.outcomes.settle(delivery, webhook, result, None)

    async def _poison(self, pending: _Pending, error: Exception) -> None:
        try:
            async with asyncio.timeout(self.budget):
                await self.outcomes.poison(pending.entry, error)
        except BaseException as exc:
            pending.failed = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._one_done(pending, None)

    def _one_done(self, pending: _Pending, retry: Retry | None) -> None:
        """One of the entry's deliveries ended; the last one completes the entry."""
        if retry is not None:
            pending.retries.append(retry)
        pending.left -= 1
        if pending.left:
            return
        self.in_flight.pop(pending.key, None)
        entry = pending.entry
        if pending.failed is not None:
            if isinstance(pending.failed, Exception):
                log.error(
                    "entry not handled; it will be reclaimed",
                    entry_id=entry.id.decode(),
                    error=repr(pending.failed),
                )
            return
        self.completer.complete(Completion(entry, tuple(pending.retries), pending.event_id))
