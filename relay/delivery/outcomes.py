"""What follows one attempt: done, a retry to schedule, or a dead letter; and their side effects
(410 switches the webhook off, a singleUse success deletes it, every attempt is logged: one line
and one record in the webhook's attempt log; the circuit breaker is told, with the next batch of
those records; the operational notices a switch-off or a dead letter raises are queued).

A 2xx for an ordinary webhook, the common case, is settled without awaiting anything
(``delivered``); everything else goes through ``settle``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from relay import metrics
from relay.clock import Clock
from relay.delivery.acks import Completer
from relay.delivery.breaker import Breakers
from relay.delivery.message import Delivery
from relay.delivery.policy import AttemptResult, Verdict, classify, describe, status_class
from relay.delivery.retry import GiveUp, Retry, after_failure
from relay.delivery.single_use import SingleUse
from relay.notices import DISABLED, GONE, context, quiet
from relay.store.attempts import AttemptRecord
from relay.store.dead_letters import DeadLetters, letter_fields
from relay.store.notices import Notices
from relay.store.streams import Entry
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook

log = structlog.get_logger("relay.delivery")

HELD_UNSENT = "not sent: no key of RELAY_SECRET_KEYS opens the webhook's stored secret"

_DEAD_KIND = {Verdict.GONE: "gone", Verdict.REFUSED: "refused"}


@dataclass(kw_only=True)
class Outcomes:
    store: WebhookStore
    dead_letters: DeadLetters
    completer: Completer
    single_use: SingleUse
    breakers: Breakers
    schedule: tuple[float, ...]
    clock: Clock
    notices: Notices
    lookup: Callable[[int], Webhook | None]
    """The webhook as the worker's view holds it (a dead letter's notice names it)."""
    wake: Callable[[], None]
    """Called when a notice was queued (``relay.delivery.announcer``)."""

    def _ms(self) -> int:
        return self.clock.now_ms()

    def delivered(self, delivery: Delivery, result: AttemptResult) -> None:
        """A 2xx (``classify`` said DELIVERED) for a webhook that is not single-use."""
        self._record(delivery, result, "delivered")
        log.info(
            "delivered",
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            attempt=delivery.attempt,
            status=result.status,
            ms=round(result.seconds * 1000, 2),
        )

    async def settle(
        self, delivery: Delivery, webhook: Webhook, result: AttemptResult, token: str | None
    ) -> Retry | None:
        """Act on one attempt's result; the retry to schedule, if any."""
        verdict = classify(result)
        if verdict is Verdict.DELIVERED:
            self.delivered(delivery, result)
            self.breaker_succeeded(delivery, webhook, result)
            if token is not None:
                await self.single_use.used(webhook.id, token)
                await self.store.delete(webhook.id)
                log.info("single-use webhook delivered and deleted", webhook_id=webhook.id)
            return None
        if token is not None:
            await self.single_use.release(webhook.id, token)
        if verdict is Verdict.GONE:
            await self._gone(delivery, webhook, result)
        if verdict is Verdict.RETRY:
            retry = await self._retry(delivery, result, "exhausted", "delivery failed, retry scheduled")
            # with the batch that acknowledges the entry, after anything that could leave it pending
            self.breakers.failed(webhook.id, self._notice(delivery, webhook, result))
            return retry
        await self.dead(delivery, _DEAD_KIND[verdict], describe(result), result)
        return None

    async def secret_unreadable(self, delivery: Delivery) -> Retry | None:
        """Nothing was sent: no configured key opens the webhook's secret. The delivery follows
        the retry schedule (a process with the key may take it, e.g. later in a rolling deploy),
        then ends as a dead letter of kind ``secret-unreadable``."""
        metrics.DELIVERIES_SECRET_UNREADABLE.inc()
        result = AttemptResult(status=None, seconds=0.0, error=HELD_UNSENT)
        held = "delivery held: its webhook's secret is unreadable; nothing sent, retry scheduled"
        return await self._retry(delivery, result, "secret-unreadable", held, level=logging.ERROR)

    async def _retry(
        self,
        delivery: Delivery,
        result: AttemptResult,
        dead_kind: str,
        logged: str,
        *,
        level: int = logging.INFO,
    ) -> Retry | None:
        """The next attempt on the schedule (recorded, counted, logged as ``logged``), or past its
        end a dead letter of kind ``dead_kind``."""
        step = after_failure(delivery, result, self.schedule, self.clock)
        if isinstance(step, GiveUp):
            await self.dead(delivery, dead_kind, step.reason, result)
            return None
        self._record(delivery, result, "retry", retry_at=step.due_ms)
        metrics.RETRIES_SCHEDULED.inc()
        log.log(
            level,
            logged,
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            attempt=delivery.attempt,
            error=describe(result),
            retry_in=round(step.due - self.clock.now(), 3),
        )
        return step

    def _notice(self, delivery: Delivery, webhook: Webhook, result: AttemptResult | None) -> bytes:
        """The context of a notice about this delivery's webhook; empty (none is raised) when the
        delivery carries an operational event itself."""
        if quiet(delivery.event):
            return b""
        return context(webhook.id, webhook.name, webhook.callback, *_last(result))

    def breaker_succeeded(self, delivery: Delivery, webhook: Webhook, result: AttemptResult) -> None:
        """A 2xx: the webhook's failures in a row are cleared, its breaker closed if open (with the
        next batch)."""
        self.breakers.succeeded(webhook.id, self._notice(delivery, webhook, result))

    async def _gone(self, delivery: Delivery, webhook: Webhook, result: AttemptResult) -> None:
        """A 410: switch the webhook off; counted, logged and announced (``Disabled``) only by the
        worker that did it (several deliveries to it may get their 410 at once)."""
        if not await self.store.set_enabled(webhook.id, False, self._ms()):
            return
        metrics.WEBHOOKS_DISABLED.inc()
        log.warning(f"webhook disabled: {GONE}", webhook_id=webhook.id, name=webhook.name)
        notice = self._notice(delivery, webhook, result)
        if notice:
            await self.notices.announce(DISABLED, notice, GONE, self._ms())
            self.wake()

    async def dead(
        self, delivery: Delivery, kind: str, reason: str, result: AttemptResult | None = None
    ) -> None:
        """Write the delivery's dead letter (before its entry is acknowledged), with the delivery's
        attempts as its event's log holds them and this last one."""
        outcome = "refused" if kind == "refused" else "dead"
        history = await self.completer.attempts.history(delivery.event.id, delivery.id)
        if result is not None:  # read before this record is queued: it cannot be in there twice
            last = self._record(delivery, result, outcome)
        else:  # given up without an attempt (the webhook is disabled): noted all the same
            last = self._note(delivery, AttemptResult(status=None, seconds=0.0, error=reason), outcome)
        fields = letter_fields(
            kind=kind,
            reason=reason,
            at=self._ms(),
            webhook_id=delivery.webhook_id,
            attempts=delivery.attempt if result is not None else delivery.attempt - 1,
            last_status=result.status if result is not None else None,
            last_error=(result.error or "") if result is not None else "",
            event=delivery.event,
            history=[last.dumps(), *history],
        )
        if not quiet(delivery.event):  # counted first: a failure leaves the entry to be reclaimed
            webhook = self.lookup(delivery.webhook_id)
            name, callback = (None, None) if webhook is None else (webhook.name, webhook.callback)
            about = context(delivery.webhook_id, name, callback, *_last(result))
            await self.notices.dead_lettered(delivery.webhook_id, about, f"{kind}: {reason}", self._ms())
            self.wake()
        await self.dead_letters.add(fields)
        metrics.DEAD_LETTERS.labels(kind).inc()
        log.warning(
            "delivery dead-lettered",
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            attempt=delivery.attempt,
            kind=kind,
            reason=reason,
        )

    async def poison(self, entry: Entry, error: Exception) -> None:
        """An entry that is not an event (or a delivery): kept aside, marked as poison."""
        fields = letter_fields(
            kind="poison",
            reason=f"unreadable entry {entry.id.decode()}: {type(error).__name__}: {error}"[:300],
            at=self._ms(),
            raw=entry.fields,
        )
        await self.dead_letters.add(fields)
        metrics.DEAD_LETTERS.labels("poison").inc()
        log.error("poison entry dead-lettered", entry_id=entry.id.decode(), partition=entry.partition)

    async def not_live(self, delivery: Delivery, webhook: Webhook, now_ms: int) -> None:
        """A retry or replay for a webhook switched off (dead letter) or expired (deleted)."""
        if webhook.enabled:
            if await self.store.delete(webhook.id):
                log.info("expired webhook deleted", webhook_id=webhook.id)
            return
        await self.dead(delivery, "disabled", "the webhook is disabled")

    def _record(
        self, delivery: Delivery, result: AttemptResult, outcome: str, retry_at: int | None = None
    ) -> AttemptRecord:
        """The attempt's metrics and its record in the webhook's and the event's attempt logs (all
        batched)."""
        self.completer.tally.attempt(
            outcome, status_class(result), result.seconds if result.status is not None else None
        )
        return self._note(delivery, result, outcome, retry_at)

    def _note(
        self, delivery: Delivery, result: AttemptResult, outcome: str, retry_at: int | None = None
    ) -> AttemptRecord:
        record = AttemptRecord(
            at=self._ms(),
            delivery_id=delivery.id,
            attempt=delivery.attempt,
            outcome=outcome,
            status=result.status,
            seconds=result.seconds,
            error=result.error,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event.id,
            retry_at=retry_at,
            answer=result.answer,
        )
        self.completer.record(delivery.webhook_id, record)
        return record


def _last(result: AttemptResult | None) -> tuple[int | None, str | None]:
    return (None, None) if result is None else (result.status, result.error)
