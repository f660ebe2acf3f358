"""A delivery's slow paths, and what both paths share: the webhook's request-making data
(``prepared``), an attempt in a span of its trace (``_traced``), putting a delivery off.

The slow paths: a webhook the view lacks, switched off, expired, single-use, or changed while the
delivery waited for its host (``_unusual``, ``_attempt``); a circuit breaker holding a delivery
back (``_held``); a rate limit without a token (``_throttled``); a request that cannot be built
(``_unbuildable``). ``Dispatcher`` (``relay.delivery.dispatch``) runs the common case and comes
here for the rest; it is this class with the entries' bookkeeping added.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog

from relay import metrics
from relay.clock import Clock
from relay.delivery.client import Sender
from relay.delivery.hosts import HostGates, host_of
from relay.delivery.message import Delivery, OutboundRequest, Prepared
from relay.delivery.outcomes import Outcomes
from relay.delivery.policy import AttemptResult
from relay.delivery.retry import Retry, paused, paused_too_long, put_off
from relay.delivery.single_use import Lease, SingleUse
from relay.delivery.throttle import Throttle
from relay.store.webhooks import WebhookStore
from relay.tracing import TRACEPARENT, Tracing, end, traceparent
from relay.webhooks.model import Webhook
from relay.webhooks.sealing import SecretUnreadable
from relay.webhooks.view import WebhookView

log = structlog.get_logger("relay.delivery")


class SlowPaths:
    """The paths a delivery rarely takes. Its attributes are the ``Dispatcher``'s fields."""

    view: WebhookView
    store: WebhookStore
    sender: Sender
    hosts: HostGates
    single_use: SingleUse
    throttle: Throttle
    outcomes: Outcomes
    clock: Clock
    budget: float
    tracing: Tracing
    _prepared: dict[int, Prepared]

    def prepared(self, webhook: Webhook) -> Prepared:
        """The webhook's request-making data, worked out again only when the webhook changed."""
        found = self._prepared.get(webhook.id)
        if found is None or found.webhook is not webhook:
            if len(self._prepared) >= 10_000:
                self._prepared.clear()
            found = self._prepared[webhook.id] = Prepared(webhook)
        return found

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

    def _defer(self, delivery: Delivery, reason: str, wait: float = 0.0) -> Retry:
        """Put off without an attempt: back through the scheduled set, same attempt number."""
        metrics.DELIVERIES_DEFERRED.labels(reason).inc()
        return put_off(delivery, self.clock, wait)
