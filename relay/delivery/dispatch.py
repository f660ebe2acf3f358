"""One entry, start to finish: which deliveries it holds, each delivery's attempt, the entry's ack.

An events-stream entry fans out to every live webhook that matches it (a first attempt each);
a deliveries-stream entry is one delivery. The entry is completed (its retries scheduled and it
acknowledged, in one step) only once every one of its deliveries is delivered, dead-lettered or
scheduled; if anything fails on the way it stays pending and is reclaimed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from relay.delivery.acks import Completer
from relay.delivery.capacity import Capacity
from relay.delivery.client import Sender
from relay.delivery.hosts import HostGates, host_of
from relay.delivery.message import Delivery, build_request
from relay.delivery.outcomes import Outcomes, Retry
from relay.delivery.policy import deferred
from relay.delivery.single_use import Lease, SingleUse
from relay.events import StreamEvent
from relay.store.streams import Completion, Entry
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook
from relay.webhooks.view import WebhookView

log = structlog.get_logger("relay.delivery")

Plan = list[tuple[Delivery, Webhook | None]]
EntryKey = tuple[int, bool, bytes]


@dataclass
class Dispatcher:
    view: WebhookView
    store: WebhookStore
    sender: Sender
    hosts: HostGates
    single_use: SingleUse
    outcomes: Outcomes
    completer: Completer
    capacity: Capacity
    now: Callable[[], float]
    rand: Callable[[], float]
    budget: float
    """Bound on one entry's handling, Redis calls included; past it the entry is left pending."""
    in_flight: dict[EntryKey, asyncio.Task[None]] = field(default_factory=dict)
    due_hints: dict[int, int] = field(default_factory=dict)
    """Partition -> the earliest retry this process scheduled there (unix ms), for its reader."""

    def dispatch(self, entry: Entry) -> None:
        """Start handling ``entry`` (unless it is being handled already, e.g. reclaimed)."""
        key = (entry.partition, entry.replay, entry.id)
        if key in self.in_flight:
            return
        plan: Plan | Exception
        try:
            plan = self.plan(entry)
        except (KeyError, ValueError) as exc:
            plan = exc
        if isinstance(plan, list) and not plan:
            self.completer.complete(Completion(entry))  # no webhook wants it
            return
        held = [len(plan) if isinstance(plan, list) else 1]  # slots: each delivery frees its own
        self.capacity.take(held[0])
        task = asyncio.create_task(self._run(entry, plan, held), name=f"entry-{entry.id.decode()}")
        self.in_flight[key] = task

        def finished(_: asyncio.Task[None]) -> None:
            self.in_flight.pop(key, None)
            self.capacity.give(held[0])

        task.add_done_callback(finished)

    def plan(self, entry: Entry) -> Plan:
        """The deliveries an entry holds. Raises KeyError or ValueError on a poison entry."""
        if entry.replay:
            delivery = Delivery.from_fields(entry.fields)
            return [(delivery, self.view.get(delivery.webhook_id))]
        event = StreamEvent.from_fields(entry.fields)
        now_ms = int(self.now() * 1000)
        hooks = self.view.matching(event.resource, event.event_key, now_ms)
        return [(Delivery(w.id, 1, event), w) for w in hooks]

    async def _run(self, entry: Entry, plan: Plan | Exception, held: list[int]) -> None:
        try:
            async with asyncio.timeout(self.budget):
                if isinstance(plan, Exception):
                    await self.outcomes.poison(entry, plan)
                    self.completer.complete(Completion(entry))
                    return
                if len(plan) == 1:  # the common case, without gather's overhead
                    results: list[Retry | BaseException | None] = [await self._one(*plan[0], held)]
                else:
                    results = await asyncio.gather(
                        *(self._one(d, w, held) for d, w in plan), return_exceptions=True
                    )
        except Exception as exc:  # left pending: reclaimed and handled again
            log.error("entry not handled; it will be reclaimed", entry_id=entry.id.decode(), error=repr(exc))
            return
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            if any(isinstance(e, asyncio.CancelledError) for e in errors):
                raise asyncio.CancelledError
            log.error(
                "entry not handled; it will be reclaimed", entry_id=entry.id.decode(), error=repr(errors[0])
            )
            return
        retries = tuple(r for r in results if r is not None and not isinstance(r, BaseException))
        self.completer.complete(Completion(entry, retries))
        if retries:
            due = min(due_ms for due_ms, _ in retries)
            self.due_hints[entry.partition] = min(due, self.due_hints.get(entry.partition, due))

    async def _one(self, delivery: Delivery, webhook: Webhook | None, held: list[int]) -> Retry | None:
        """One delivery of an entry; its process slot is given back as soon as it ends."""
        try:
            return await self._deliver(delivery, webhook)
        finally:
            held[0] -= 1
            self.capacity.give(1)

    async def _deliver(self, delivery: Delivery, webhook: Webhook | None) -> Retry | None:
        if webhook is None:
            webhook = await self.store.get(delivery.webhook_id)  # the view may lag a change
            if webhook is None:
                log.info(
                    "webhook gone; delivery dropped", webhook_id=delivery.webhook_id, delivery_id=delivery.id
                )
                return None
        now_ms = int(self.now() * 1000)
        if not webhook.live(now_ms):
            await self.outcomes.not_live(delivery, webhook, now_ms)
            return None
        host = host_of(webhook.callback)
        if not await self.hosts.enter(host):
            return self._defer(delivery, self.hosts.expected_wait(host))
        took: list[float] = []
        try:
            return await self._attempt(delivery, webhook, took)
        finally:
            self.hosts.leave(host, took[0] if took else None)

    async def _attempt(self, delivery: Delivery, webhook: Webhook, took: list[float]) -> Retry | None:
        """One attempt; its duration is appended to ``took`` (for the host's average)."""
        token: str | None = None
        if webhook.single_use:
            token = uuid.uuid4().hex
            lease = await self.single_use.acquire(webhook.id, token)
            if lease is Lease.GONE:
                return None
            if lease is Lease.BUSY:
                return self._defer(delivery)
        try:
            request = build_request(delivery, webhook, self.now())
        except (ValueError, TypeError) as exc:
            if token is not None:
                await self.single_use.release(webhook.id, token)
            await self.outcomes.dead(delivery, "poison", f"cannot build the request: {exc}"[:300])
            return None
        result = await self.sender.send(request)
        if not result.refused:
            took.append(result.seconds)
        return await self.outcomes.settle(delivery, webhook, result, token)

    def _defer(self, delivery: Delivery, wait: float = 0.0) -> Retry:
        """Put off without an attempt: back through the scheduled set, same attempt number."""
        return int(deferred(self.now(), self.rand, wait) * 1000), delivery.member()
