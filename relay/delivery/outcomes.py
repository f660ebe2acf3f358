"""What follows one attempt: done, a retry to schedule, or a dead letter; and their side effects
(410 switches the webhook off, a singleUse success deletes it, every attempt is logged)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from relay import metrics
from relay.delivery.acks import Completer
from relay.delivery.message import Delivery
from relay.delivery.policy import (
    AttemptResult,
    Dead,
    Verdict,
    classify,
    describe,
    next_step,
    status_class,
)
from relay.delivery.single_use import SingleUse
from relay.store.attempts import attempt_record
from relay.store.dead_letters import DeadLetters, letter_fields
from relay.store.streams import Entry
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook

log = structlog.get_logger("relay.delivery")

Retry = tuple[int, bytes]
"""A delivery to schedule: (due, unix ms; its sorted-set member)."""

_DEAD_KIND = {Verdict.GONE: "gone", Verdict.REJECTED: "rejected", Verdict.REFUSED: "refused"}


@functools.cache
def _counter(outcome: str, status_class: str) -> Any:
    """``relay_deliveries_total`` for one label pair, looked up once (it is on every attempt)."""
    return metrics.DELIVERIES.labels(outcome, status_class)


@dataclass
class Outcomes:
    store: WebhookStore
    dead_letters: DeadLetters
    completer: Completer
    single_use: SingleUse
    schedule: tuple[float, ...]
    now: Callable[[], float]
    rand: Callable[[], float]

    def _ms(self) -> int:
        return int(self.now() * 1000)

    async def settle(
        self, delivery: Delivery, webhook: Webhook, result: AttemptResult, token: str | None
    ) -> Retry | None:
        """Act on one attempt's result; the retry to schedule, if any."""
        verdict = classify(result)
        if result.status is not None:
            metrics.DELIVERY_SECONDS.observe(result.seconds)
        if verdict is Verdict.DELIVERED:
            self._record(delivery, result, "delivered")
            if token is not None:
                await self.single_use.used(webhook.id, token)
                await self.store.delete(webhook.id)
                log.info("single-use webhook delivered and deleted", webhook_id=webhook.id)
            return None
        if token is not None:
            await self.single_use.release(webhook.id, token)
        if verdict is Verdict.GONE:
            await self._gone(webhook)
        if verdict is Verdict.RETRY:
            step = next_step(delivery.attempt, self.schedule, result, self.now(), self.rand)
            if not isinstance(step, Dead):
                self._record(delivery, result, "retry")
                metrics.RETRIES_SCHEDULED.inc()
                log.info(
                    "delivery failed, retry scheduled",
                    webhook_id=webhook.id,
                    delivery_id=delivery.id,
                    attempt=delivery.attempt,
                    error=describe(result),
                    retry_in=round(step.due - self.now(), 3),
                )
                return int(step.due * 1000), delivery.again(step.attempt).member()
            await self.dead(delivery, "exhausted", step.reason, result)
            return None
        await self.dead(delivery, _DEAD_KIND[verdict], describe(result), result)
        return None

    async def _gone(self, webhook: Webhook) -> None:
        if await self.store.set_enabled(webhook.id, False, self._ms()):
            metrics.WEBHOOKS_DISABLED.inc()
            log.warning(
                "webhook disabled: its callback answered 410 Gone",
                webhook_id=webhook.id,
                name=webhook.name,
            )

    async def dead(
        self, delivery: Delivery, kind: str, reason: str, result: AttemptResult | None = None
    ) -> None:
        """Write the delivery's dead letter (before its entry is acknowledged)."""
        fields = letter_fields(
            kind=kind,
            reason=reason,
            at=self._ms(),
            webhook_id=delivery.webhook_id,
            attempts=delivery.attempt if result is not None else delivery.attempt - 1,
            last_status=result.status if result is not None else None,
            last_error=(result.error or "") if result is not None else "",
            event=delivery.event,
        )
        await self.dead_letters.add(fields)
        metrics.DEAD_LETTERS.labels(kind).inc()
        if result is not None:
            self._record(delivery, result, "refused" if kind == "refused" else "dead")
        log.warning(
            "delivery dead-lettered",
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
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

    def _record(self, delivery: Delivery, result: AttemptResult, outcome: str) -> None:
        _counter(outcome, status_class(result)).inc()
        record = attempt_record(
            at=self._ms(),
            delivery_id=delivery.id,
            attempt=delivery.attempt,
            outcome=outcome,
            status=result.status,
            seconds=result.seconds,
            error=result.error,
        )
        self.completer.record(delivery.webhook_id, record)
