"""Every Redis key, stream and group name, made in one place.

Keys that a script or transaction touches together share a hash tag (``{...}``), so the layout
works unchanged on Redis Cluster:

- ``{p<N>}``: partition N: its events stream, its deliveries stream (retries due and replays),
  its scheduled-retries sorted set and its dedup claims. A callback's partition is fixed by the
  hash of its body, so a repeat lands on the same dedup keys.
- ``{webhooks}``: the webhook table, its id sequence and version counter, single-use leases.
- ``{dead}``: the dead-letter stream.
- ``{attempts:<id>}``: recent delivery attempts of one webhook.
- ``{rate:<id>}``: one webhook's rate limit (``rateLimit``), shared by every worker.
- ``{breakers}``: every webhook's circuit breaker that is not closed and clean, and the operational
  events waiting to be put on a stream (``relay.delivery.notices``) with the dead-letter counts
  they are made from: one slot, so the script that opens or closes a breaker queues its event in
  the same step.
- ``{ev:<event id>}``: what became of one event: the webhooks it matched, each attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "relay-workers"
"""The consumer group every worker joins, on every partition's streams."""


@dataclass(frozen=True)
class Keys:
    prefix: str = "relay"
    partitions: int = 4

    def partition_of(self, digest: bytes) -> int:
        """The partition of a callback, from the (uniform) hash of its body."""
        return int.from_bytes(digest[:8], "big") % self.partitions

    def _p(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition}}}"

    def events(self, partition: int) -> str:
        return f"{self._p(partition)}:events"

    def deliveries(self, partition: int) -> str:
        return f"{self._p(partition)}:deliveries"

    def scheduled(self, partition: int) -> str:
        return f"{self._p(partition)}:scheduled"

    def dedup(self, partition: int, digest_hex: str) -> str:
        return f"{self._p(partition)}:seen:{digest_hex}"

    def all_events(self) -> list[str]:
        return [self.events(p) for p in range(self.partitions)]

    # --- webhooks ---------------------------------------------------------------------------
    @property
    def webhooks(self) -> str:
        """Hash: webhook id -> its JSON."""
        return f"{self.prefix}:{{webhooks}}:all"

    @property
    def webhook_seq(self) -> str:
        return f"{self.prefix}:{{webhooks}}:seq"

    @property
    def webhooks_version(self) -> str:
        """Counter bumped by every change to the webhook table; workers poll it."""
        return f"{self.prefix}:{{webhooks}}:version"

    def webhook_index(self, term: str) -> str:
        """Sorted set (score = id): the webhooks with one listing-filter value, e.g.
        ``resource:OutboundCall``, or ``all``."""
        return f"{self.prefix}:{{webhooks}}:idx:{term}"

    def single_use_lease(self, webhook_id: int) -> str:
        return f"{self.prefix}:{{webhooks}}:lease:{webhook_id}"

    def attempts(self, webhook_id: int) -> str:
        return f"{self.prefix}:{{attempts:{webhook_id}}}:log"

    def rate_limit(self, webhook_id: int) -> str:
        """String: the webhook's rate-limit state, a theoretical arrival time in unix ms
        (``relay.delivery.throttle``)."""
        return f"{self.prefix}:{{rate:{webhook_id}}}:tat"

    @property
    def breakers(self) -> str:
        """Hash: webhook id -> its circuit breaker's state (``relay.delivery.breaker``); a webhook
        absent is closed with no failure."""
        return f"{self.prefix}:{{breakers}}:state"

    @property
    def notices(self) -> str:
        """List, oldest first: operational events (``RelayWebhook``) not yet on an events stream."""
        return f"{self.prefix}:{{breakers}}:notices"

    @property
    def notice_seq(self) -> str:
        """Counter: numbers each operational event, so no two are the same event."""
        return f"{self.prefix}:{{breakers}}:notice-seq"

    @property
    def notice_lock(self) -> str:
        """String: the worker moving the notices onto the streams now (a lease)."""
        return f"{self.prefix}:{{breakers}}:notice-lock"

    @property
    def dead_counts(self) -> str:
        """Hash: webhook id -> its dead letters since its last ``DeadLettered`` event, as JSON."""
        return f"{self.prefix}:{{breakers}}:dead-counts"

    def outcomes(self, event_id: str) -> str:
        """List, newest first: one event's delivery records (``relay.store.attempts``)."""
        return f"{self.prefix}:{{ev:{event_id}}}:outcomes"

    # --- dead letters -----------------------------------------------------------------------
    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:{{dead}}:letters"
