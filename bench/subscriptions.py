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


FILTER: dict[str, Any] = {
    "resource.finalCallResult": {"$in": ["LA", "AM"]},
    "resource.campaignId": {"$exist": True},
}
"""A filter every benchmark event passes (``$in`` and ``$exist``): evaluated on every delivery."""
RATE_LIMIT = 10_000
"""A ``rateLimit`` (the most a webhook may have) that the benchmarks' rates stay under: its
tokens are leased from Redis in batches on every delivery's path, and never bind."""


def specs(
    sink_url: str,
    matching: int,
    others: int,
    filter_: dict[str, Any] | None = None,
    rate_limit: int | None = None,
) -> list[WebhookSpec]:
    """``matching`` webhooks on OutboundCall Finished (the benchmark's events), each with
    ``filter_`` and ``rate_limit``, then ``others`` spread over every other resource and event."""
    out = [
        WebhookSpec(
            name=f"bench match {n}",
            resource="OutboundCall",
            events=("Finished",),
            callback=f"{sink_url}/match/{n}",
            secret=SUBSCRIBER_SECRET,
            filter=filter_,
            rate_limit=rate_limit,
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
    redis: RedisClient,
    keys: Keys,
    sink_url: str,
    matching: int,
    others: int,
    now_ms: int,
    *,
    every_feature: bool = False,
) -> None:
    """The webhooks of ``specs``; ``every_feature``: the matching ones with ``FILTER`` and
    ``RATE_LIMIT`` (breakers, attempt records and event search are on by the workers' defaults)."""
    store = WebhookStore(redis, keys)
    found = (
        specs(sink_url, matching, others, FILTER, RATE_LIMIT)
        if every_feature
        else specs(sink_url, matching, others)
    )
    for spec in found:
        await store.create(spec, now_ms)
