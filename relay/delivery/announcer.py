"""Moving the operational events' outbox (``relay.store.notices``) onto the events streams.

One loop per process: every ``EVERY`` seconds, or as soon as this process queued a notice
(``wake``), it takes a batch of the outbox under the shared lease, does what each item asks (an
auto-disable's switch-off first: logged and counted here, by the one worker that moves the item),
puts the items' events on the streams, then trims them off. If anything fails on the way the
items stay in the outbox, and the lease is given back or runs out: a later round does them again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from relay import metrics
from relay.clock import Clock
from relay.events import StreamEvent
from relay.notices import KEPT_FAILING, parse
from relay.store.notices import Notices
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook

log = structlog.get_logger("relay.delivery")

EVERY = 1.0
"""Seconds between a worker's looks at the outbox when it queued nothing itself."""


@dataclass(kw_only=True)
class Announcer:
    notices: Notices
    store: WebhookStore
    clock: Clock
    lookup: Callable[[int], Webhook | None]
    """The webhook as the worker's view holds it (its name, for the log)."""
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """A notice was queued: look at the outbox now."""
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        failures = 0
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVERY):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                while await self.round() > 0:
                    pass
                failures = 0
            except Exception as exc:  # the notices stay in the outbox: done on a later round
                failures += 1
                if failures == 1:
                    log.warning("cannot move notices onto the streams yet", error=type(exc).__name__)

    async def round(self) -> int:
        """Take a batch of the outbox (unless another worker has the lease) and do it; how many
        notices were done."""
        token, items = await self.notices.take(self.clock.now_ms())
        if not items:
            return 0
        try:
            events: list[StreamEvent] = []
            for item in items:
                try:
                    notice = parse(item)
                except (KeyError, TypeError, ValueError) as exc:  # not written by the relay: dropped
                    log.error("unreadable notice dropped", notice=item[:200], error=repr(exc))
                    continue
                if notice.switch_off is not None:
                    await self._switch_off(notice.switch_off)
                if notice.event is not None:
                    events.append(notice.event)
            await self.notices.put(events)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.notices.drained(token, 0)
            raise
        await self.notices.drained(token, len(items))
        return len(items)

    async def _switch_off(self, webhook_id: int) -> None:
        if await self.store.set_enabled(webhook_id, False, self.clock.now_ms()):
            metrics.WEBHOOKS_AUTO_DISABLED.inc()
            webhook = self.lookup(webhook_id)
            name = None if webhook is None else webhook.name
            log.warning(f"webhook disabled: {KEPT_FAILING}", webhook_id=webhook_id, name=name)
