"""How long and how big each benchmark is: the full run (about 10 minutes) and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Config:
    mode: str
    rounds: int
    """Runs per figure; each figure is their median, with the min and max."""
    warmup_seconds: float
    ingest_seconds: float
    concurrencies: tuple[int, ...]
    bodies: int
    """Distinct signed callbacks in wrk's file: more than one run posts, so none is a repeat."""
    delivery_rounds: int
    delivery_events: int
    """Events per delivery run (1 worker, and the minimal loop)."""
    scale_events: int
    """Events per run of 2 workers."""
    fanout_webhooks: int
    fanout_matching: int
    fanout_events: int
    e2e_seconds: float
    subscriber_events: int
    """Events per drain of the realistic subscriber (50 ms answers: ~600 a second)."""
    e2e_rounds: int
    backlog_events: int
    small_backlog_events: int
    memory_seconds: float
    matching_sizes: tuple[int, ...]
    profile_seconds: float

    def with_rounds(self, rounds: int | None) -> Config:
        """Every benchmark with ``rounds`` runs per figure."""
        if rounds is None:
            return self
        return replace(self, rounds=rounds, delivery_rounds=rounds, e2e_rounds=rounds)


FULL = Config(
    mode="full",
    rounds=5,
    warmup_seconds=2.0,
    ingest_seconds=4.0,
    concurrencies=(16, 64),
    bodies=120_000,
    delivery_rounds=3,
    delivery_events=100_000,
    scale_events=20_000,
    fanout_webhooks=1_000,
    fanout_matching=3,
    fanout_events=3_000,
    e2e_seconds=8.0,
    subscriber_events=10_000,
    e2e_rounds=3,
    backlog_events=1_000_000,
    small_backlog_events=20_000,
    memory_seconds=10.0,
    matching_sizes=(10, 100, 1_000, 10_000),
    profile_seconds=8.0,
)

QUICK = Config(
    mode="quick",
    rounds=2,
    warmup_seconds=1.0,
    ingest_seconds=1.0,
    concurrencies=(16, 64),
    bodies=30_000,
    delivery_rounds=2,
    delivery_events=4_000,
    scale_events=3_000,
    fanout_webhooks=1_000,
    fanout_matching=3,
    fanout_events=1_000,
    e2e_seconds=3.0,
    subscriber_events=1_500,
    e2e_rounds=2,
    backlog_events=100_000,
    small_backlog_events=5_000,
    memory_seconds=3.0,
    matching_sizes=(10, 100, 1_000, 10_000),
    profile_seconds=3.0,
)
