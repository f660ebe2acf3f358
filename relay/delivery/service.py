"""A process's delivery workers, wired once: start, stop (drain within the grace), readiness.

``workers`` consumers each run one reader per partition; they share the process's webhook view,
HTTP session, in-flight bound and per-host gates. Stopping: stop reading; give in-flight
deliveries ``shutdown_grace`` to finish; cancel the rest (their entries stay pending and are
reclaimed by another worker); send the last acknowledgements; close the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Collection

import structlog

from relay.clock import SYSTEM, Clock
from relay.delivery.acks import MAX_BATCH, Completer
from relay.delivery.announcer import Announcer
from relay.delivery.breaker import Breakers
from relay.delivery.capacity import Capacity
from relay.delivery.client import Sender
from relay.delivery.dispatch import Dispatcher
from relay.delivery.hosts import HostGates
from relay.delivery.outcomes import Outcomes
from relay.delivery.retry import DueTimes
from relay.delivery.single_use import SingleUse
from relay.delivery.throttle import Throttle
from relay.delivery.worker import PartitionReader, backoff
from relay.keys import Keys
from relay.settings import Settings
from relay.store.attempts import Attempts
from relay.store.connect import RedisClient
from relay.store.dead_letters import DeadLetters
from relay.store.notices import Notices
from relay.store.streams import Streams
from relay.store.webhooks import WebhookStore
from relay.tracing import Tracing
from relay.webhooks.model import Webhook
from relay.webhooks.sealing import Opener
from relay.webhooks.view import WebhookView

log = structlog.get_logger("relay.delivery")

SWEEP_EVERY = 30.0
"""Seconds between sweeps that delete expired webhooks."""
BREAKER_REFRESH = 0.25
"""Seconds between a worker's reads of the shared breaker states: how long it may go on sending
to a webhook whose breaker another worker opened (its own failures tell it sooner)."""


def consumer_name(n: int) -> str:
    """Unique per process start: a restarted process never inherits a dead one's entries."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}-{n}"


async def cancel_all(tasks: Collection[asyncio.Task[None]]) -> None:
    """Cancel and wait; cancel again any that went on (a cancel can be lost inside a library)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    await asyncio.gather(*tasks, return_exceptions=True)


class DeliveryService:
    def __init__(
        self,
        settings: Settings,
        redis: RedisClient,
        keys: Keys,
        *,
        workers: int = 1,
        clock: Clock = SYSTEM,
        sweep_every: float = SWEEP_EVERY,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sweep_every = sweep_every
        self.store = WebhookStore(redis, keys, secret_keys=settings.secret_keys)
        self.view = WebhookView(self.store, opener=Opener(settings.secret_keys.fernet))
        self.streams = Streams(redis, keys)
        self.sender = Sender(
            allow=settings.egress_allow,
            timeout=settings.delivery_timeout,
            max_connections=settings.max_in_flight,
        )
        attempts = Attempts(
            redis=redis,
            keys=keys,
            kept=settings.attempts_kept,
            event_ttl_ms=int(settings.stream_retention * 1000),
        )
        self.due = DueTimes()
        self.completer = Completer(
            redis=redis,
            streams=self.streams,
            attempts=attempts,
            due=self.due,
            bound=max(MAX_BATCH, 2 * settings.max_in_flight),
        )
        self.capacity = Capacity(settings.max_in_flight, least=settings.max_in_flight // 4)
        single_use = SingleUse(redis, keys, ttl=settings.delivery_timeout * 2 + 30)
        self.dead_letters = DeadLetters(redis, keys)
        self.notices = Notices(redis, keys)
        self.announcer = Announcer(notices=self.notices, store=self.store, clock=clock, lookup=self.view.get)
        self.breakers = Breakers(
            redis,
            keys,
            batch=self.completer,
            failures=settings.breaker_failures,
            max_cooldown=settings.breaker_max_cooldown,
            probe_lease=settings.delivery_timeout + 5,
            disable_after=settings.disable_after,
            clock=clock,
            wake=self.announcer.wake,
        )
        outcomes = Outcomes(
            store=self.store,
            dead_letters=self.dead_letters,
            completer=self.completer,
            single_use=single_use,
            breakers=self.breakers,
            schedule=settings.retry_schedule,
            clock=clock,
            notices=self.notices,
            lookup=self.view.get,
            wake=self.announcer.wake,
        )
        self.dispatcher = Dispatcher(
            view=self.view,
            store=self.store,
            sender=self.sender,
            hosts=HostGates(settings.max_per_host),
            single_use=single_use,
            throttle=Throttle(redis, keys, clock),
            outcomes=outcomes,
            completer=self.completer,
            capacity=self.capacity,
            clock=clock,
            budget=settings.delivery_timeout * 2 + 30,
            tracing=tracing or Tracing(),
        )
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        consumers = [consumer_name(n) for n in range(workers)]
        self.readers = [self._reader(p, c) for c in consumers for p in range(keys.partitions)]
        self.stall_after = settings.stall_timeout
        self.ready_at = 0.0
        """When the webhook view was loaded (monotonic): a reader's wait for it is no stall."""
        self._tasks: list[asyncio.Task[None]] = []

    def _reader(self, partition: int, consumer: str) -> PartitionReader:
        return PartitionReader(
            partition=partition,
            consumer=consumer,
            streams=self.streams,
            dispatcher=self.dispatcher,
            capacity=self.capacity,
            due=self.due,
            reclaim_idle=self.settings.reclaim_idle,
            retention=self.settings.stream_retention,
            ready=self.ready,
            stopping=self.stopping,
            clock=self.clock,
        )

    async def start(self) -> None:
        await self.sender.start()
        await self.completer.start()
        self._tasks.append(asyncio.create_task(self._load_view(), name="delivery-view"))
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="delivery-sweep"))
        self._tasks.append(asyncio.create_task(self._announce_forever(), name="delivery-notices"))
        if self.breakers.on:
            self._tasks.append(asyncio.create_task(self._breakers_forever(), name="delivery-breakers"))
        for reader in self.readers:
            name = f"delivery-{reader.consumer}-p{reader.partition}"
            self._tasks.append(asyncio.create_task(reader.run(), name=name))
        if self.settings.reclaim_idle <= self.settings.delivery_timeout:
            log.warning(
                "RELAY_RECLAIM_IDLE should exceed RELAY_DELIVERY_TIMEOUT, or entries still being "
                "delivered may be reclaimed and delivered twice"
            )
        log.info("delivery workers started", readers=len(self.readers))

    async def stop(self) -> None:
        self.stopping.set()
        await cancel_all(self._tasks)
        self._tasks.clear()
        in_flight = set(self.dispatcher.tasks)
        if in_flight:
            log.info("finishing deliveries in flight", deliveries=len(in_flight))
            _, late = await asyncio.wait(in_flight, timeout=self.settings.shutdown_grace)
            await cancel_all(late)
            if late:
                log.warning("deliveries cut off at shutdown; they will be reclaimed", deliveries=len(late))
        await self.dispatcher.throttle.stop()
        await self.completer.stop(grace=5.0)
        await self.sender.close()
        await self.view.stop()
        log.info("delivery workers stopped")

    def problem(self) -> str | None:
        """Readiness: None once the webhook table is loaded."""
        return None if self.ready.is_set() else "the webhook table is not loaded yet"

    def stall(self) -> str | None:
        """Liveness: None when every reader went round within RELAY_STALL_TIMEOUT."""
        if not self.ready.is_set():
            return None
        now = time.monotonic()
        idle = [now - max(r.beat, self.ready_at) for r in self.readers]
        stalled = [seconds for seconds in idle if seconds > self.stall_after]
        if stalled:
            return f"{len(stalled)} delivery loop(s) stalled for {max(stalled):.0f}s"
        return None

    async def _load_view(self) -> None:
        """Load the webhook view (retrying while Redis is away); readers wait for it."""
        failures = 0
        while not self.stopping.is_set():
            try:
                await self.view.start()
            except Exception as exc:  # retried with backoff
                failures += 1
                if failures == 1:
                    log.warning("cannot load the webhook table yet; retrying", error=type(exc).__name__)
                await asyncio.sleep(backoff(failures, self.clock))
                continue
            self.ready_at = time.monotonic()
            self.ready.set()
            return

    async def _sweep_forever(self) -> None:
        """Delete expired webhooks (they receive nothing meanwhile: matching skips them)."""
        await self.ready.wait()
        while not self.stopping.is_set():
            with contextlib.suppress(Exception):
                await self.sweep()
            await asyncio.sleep(self.sweep_every)

    async def _breakers_forever(self) -> None:
        """Read the shared breaker states every ``BREAKER_REFRESH`` seconds."""
        await self.ready.wait()
        while not self.stopping.is_set():
            with contextlib.suppress(Exception):
                await self.breakers.refresh(total=len(self.view.all()))
            await asyncio.sleep(BREAKER_REFRESH)

    async def _announce_forever(self) -> None:
        """Move the operational events onto the events streams (``relay.delivery.announcer``)."""
        await self.ready.wait()
        await self.announcer.run(self.stopping)

    async def sweep(self) -> int:
        """Delete expired webhooks; forget idle hosts' latencies; drop the dead letters older than
        RELAY_DEAD_LETTER_RETENTION. How many webhooks were deleted.

        Candidates come from the cached view (no read of the whole table); each is read again
        before it is deleted, in case it was changed (its expiry moved) since the view saw it."""
        self.dispatcher.hosts.forget_idle()
        now_ms = self.clock.now_ms()
        if self.settings.dead_letter_retention is not None:
            await self.dead_letters.trim(now_ms, int(self.settings.dead_letter_retention * 1000))
        deleted = 0
        for candidate in self.view.all():
            if not _expired(candidate, now_ms):
                continue
            webhook = await self.store.get(candidate.id)
            if webhook is not None and _expired(webhook, now_ms) and await self.store.delete(webhook.id):
                deleted += 1
                log.info("expired webhook deleted", webhook_id=webhook.id)
        return deleted


def _expired(webhook: Webhook, now_ms: int) -> bool:
    return webhook.expires_at is not None and webhook.expires_at <= now_ms
