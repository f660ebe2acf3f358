"""Webhooks for the delivery benchmarks, written through the relay's own webhook store."""

from __future__ import annotations

import itertools
from typing import Any

from relay.catalog import RESOURCES
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec

SUBSCRIBER_SECRET = "bench-subscriber-secret"
"""Every webhook has a secret, so both outbound signatures are computed on every delivery."""


def other_events() -> list[tuple[str, str]]:
    """Every (resource, event) the benchmark's events are not: webhooks on these never match."""
    return [(r, e) for r, events in RESOURCES.items() for e in events if r != "OutboundCall"]


def specs(
    sink_url: str, matching: int, others: int, filter_: dict[str, Any] | None = None
) -> list[WebhookSpec]:
    """``matching`` webhooks on OutboundCall Finished (the benchmark's events), each with
    ``filter_``, then ``others`` spread over every other resource and event."""
    out = [
        WebhookSpec(
            name=f"bench match {n}",
            resource="OutboundCall",
            events=("Finished",),
            callback=f"{sink_url}/match/{n}",
            secret=SUBSCRIBER_SECRET,
            filter=filter_,
        )
        for n in range(matching)
    ]
    pairs = itertools.cycle(other_events())
    for n in range(others):
        resource, event = next(pairs)
        out.append(
            WebhookSpec(
                name=f"bench other {n}",
                resource=resource,
                events=(event,),
                callback=f"{sink_url}/other/{n}",
                secret=SUBSCRIBER_SECRET,
            )
        )
    return out


async def subscribe(
    redis: RedisClient, keys: Keys, sink_url: str, matching: int, others: int, now_ms: int
) -> None:
    store = WebhookStore(redis, keys)
    for spec in specs(sink_url, matching, others):
        await store.create(spec, now_ms)
