"""One entry, start to finish: which deliveries it holds, each delivery's attempt, the entry's ack.

An events-stream entry fans out to every live webhook that matches it (a first attempt each);
a deliveries-stream entry is one delivery. Each delivery is one task running one coroutine
(``_deliver``); the common case (a known, live, ordinary webhook whose host has a free slot,
answering 2xx) awaits nothing but its POST. The entry is completed (its retries scheduled and it
acknowledged, in one step) once every one of its deliveries is delivered, dead-lettered or
scheduled; if anything fails on the way it stays pending and is reclaimed.

The reader has reserved one slot of the process's capacity per entry; an entry's extra
deliveries take more, an entry with none gives its slot back, and each delivery gives its slot
back when it ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from relay import metrics
from relay.clock import Clock
from relay.delivery.acks import Completer, Completion
from relay.delivery.capacity import Capacity
from relay.delivery.client import Sender
from relay.delivery.hosts import HostGates, host_of
from relay.delivery.message import Delivery, OutboundRequest, Prepared
from relay.delivery.outcomes import Outcomes
from relay.delivery.policy import AttemptResult
from relay.delivery.retry import Retry, paused, paused_too_long, put_off
from relay.delivery.single_use import Lease, SingleUse
from relay.delivery.throttle import Throttle
from relay.events import StreamEvent
from relay.store.attempts import matched_record
from relay.store.streams import Entry
from relay.store.webhooks import WebhookStore
from relay.tracing import TRACEPARENT, Tracing, end, traceparent
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

    __slots__ = ("entry", "failed", "key", "left", "retries")

    def __init__(self, entry: Entry, key: EntryKey, left: int) -> None:
        self.entry = entry
        self.key = key
        self.left = left
        self.retries: list[Retry] = []
        self.failed: BaseException | None = None


@dataclass(kw_only=True)
class Dispatcher:
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
            plan = self.plan(entry)
        except (KeyError, ValueError) as exc:
            pending = self.in_flight[key] = _Pending(entry, key, 1)
            self._spawn(self._poison(pending, exc))
            return
        if not plan:
            self.capacity.give(1)
            self.completer.complete(Completion(entry))  # no webhook wants it
            return
        if len(plan) > 1:
            self.capacity.take(len(plan) - 1)
        pending = self.in_flight[key] = _Pending(entry, key, len(plan))
        for delivery, webhook in plan:
            self._spawn(self._deliver(pending, delivery, webhook))

    def plan(self, entry: Entry) -> Plan:
        """The deliveries an entry holds. Raises KeyError or ValueError on a poison entry."""
        if entry.replay:
            delivery = Delivery.from_fields(entry.fields)
            return [(delivery, self.view.get(delivery.webhook_id))]
        event = StreamEvent.from_fields(entry.fields)
        now_ms = self.clock.now_ms()
        hooks = [w for w in self.view.matching(event.resource, event.event_key, now_ms) if wants(w, event)]
        where = f"{entry.partition}/{entry.id.decode()}"
        record = matched_record(at=now_ms, webhook_ids=[w.id for w in hooks], entry=where)
        self.completer.matched(event.id, record)
        return [(Delivery(w.id, 1, event), w) for w in hooks]

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.capacity.give(1)

    def prepared(self, webhook: Webhook) -> Prepared:
        """The webhook's request-making data, worked out again only when the webhook changed."""
        found = self._prepared.get(webhook.id)
        if found is None or found.webhook is not webhook:
            if len(self._prepared) >= 10_000:
                self._prepared.clear()
            found = self._prepared[webhook.id] = Prepared(webhook)
        return found

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

    async def _traced(self, delivery: Delivery, request: OutboundRequest) -> AttemptResult:
        """One attempt in a span of its event's trace; the subscriber gets the span's context in a
        ``traceparent`` header. (Only with tracing on: off, callers send directly.)"""
        attributes = {
            "relay.webhook.id": delivery.webhook_id,
            "relay.delivery.id": delivery.id,
            "relay.delivery.attempt": delivery.attempt,
            "server.address": host_of(request.url),
        }
        span = self.tracing.delivery(delivery.event.traceparent, attributes)
        request.headers[TRACEPARENT] = traceparent(span)
        try:
            result = await self.sender.send(request)
        except BaseException as exc:
            end(span, error=type(exc).__name__)
            raise
        end(span, http__response__status_code=result.status, error=result.error)
        return result

    async def _unbuildable(self, delivery: Delivery, error: Exception) -> None:
        async with asyncio.timeout(self.budget):
            await self.outcomes.dead(delivery, "poison", f"cannot build the request: {error}"[:300])

    async def _unusual(self, delivery: Delivery, webhook: Webhook | None) -> Retry | None:
        """A delivery whose webhook the view lacks, is switched off, expired or single-use, or was
        changed while the delivery waited for its host."""
        if webhook is None:
            webhook = await self.store.get(delivery.webhook_id)  # the view may lag a change
            if webhook is None:
                log.info(
                    "webhook gone; delivery dropped", webhook_id=delivery.webhook_id, delivery_id=delivery.id
                )
                return None
            webhook = self.view.opened(webhook)
        now_ms = self.clock.now_ms()
        if not webhook.live(now_ms):
            await self.outcomes.not_live(delivery, webhook, now_ms)
            return None
        if webhook.rate_limit is not None:
            later = await self._throttled(delivery, webhook.id, webhook.rate_limit)
            if later is not None:
                return later
        host = self.prepared(webhook).host
        if not await self.hosts.enter(host):
            return self._defer(delivery, "host_busy", self.hosts.expected_wait(host))
        took: float | None = None
        try:
            retry, took = await self._attempt(delivery, webhook)
            return retry
        finally:
            self.hosts.leave(host, took)

    async def _attempt(self, delivery: Delivery, webhook: Webhook) -> tuple[Retry | None, float | None]:
        """One attempt, under a single-use lease if the webhook needs one; and its duration."""
        held, later = await self._held(delivery)
        if held:
            return later, None
        token: str | None = None
        if webhook.single_use:
            token = uuid.uuid4().hex
            lease = await self.single_use.acquire(webhook.id, token)
            if lease is Lease.GONE:
                return None, None
            if lease is Lease.BUSY:
                return self._defer(delivery, "single_use"), None
        try:
            request = self.prepared(webhook).request(delivery, self.clock.now())
        except (SecretUnreadable, ValueError, TypeError) as exc:
            if token is not None:
                await self.single_use.release(webhook.id, token)
            if isinstance(exc, SecretUnreadable):
                return await self.outcomes.secret_unreadable(delivery), None
            await self._unbuildable(delivery, exc)
            return None, None
        result = await (self._traced(delivery, request) if self.tracing.on else self.sender.send(request))
        retry = await self.outcomes.settle(delivery, webhook, result, token)
        return retry, None if result.refused else result.seconds

    async def _held(self, delivery: Delivery) -> tuple[bool, Retry | None]:
        """Whether the webhook's open circuit breaker holds the delivery back; if so, when it comes
        back (None: held past the retry schedule's span, it was given up as ``exhausted``)."""
        verdict = await self.outcomes.breakers.check(delivery.webhook_id)
        if verdict.go:
            return False, None
        now_ms = self.clock.now_ms()
        schedule = self.outcomes.schedule
        if paused_too_long(delivery, schedule, now_ms):
            tried = delivery.attempt - 1
            reason = f"gave up after {tried} attempts: the webhook's circuit breaker stayed open"
            await self.outcomes.dead(delivery, "exhausted", reason)
            return True, None
        metrics.DELIVERIES_DEFERRED.labels("breaker_open").inc()
        left = sum(schedule) - (now_ms - (delivery.first_ms or now_ms)) / 1000
        return True, paused(delivery, self.clock, min(verdict.wait, max(0.0, left)))

    async def _throttled(self, delivery: Delivery, webhook_id: int, rate: int) -> Retry | None:
        """Spend a token of the webhook's ``rateLimit``; without one, the delivery put off."""
        async with asyncio.timeout(self.budget):
            wait = await self.throttle.take(webhook_id, rate)
        return self._defer(delivery, "rate_limit", wait) if wait else None

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

    def _defer(self, delivery: Delivery, reason: str, wait: float = 0.0) -> Retry:
        """Put off without an attempt: back through the scheduled set, same attempt number."""
        metrics.DELIVERIES_DEFERRED.labels(reason).inc()
        return put_off(delivery, self.clock, wait)

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
        self.completer.complete(Completion(entry, tuple(pending.retries)))
