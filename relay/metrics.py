"""Every Prometheus metric the relay exports, named in one place. Labels are low-cardinality."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, generate_latest

import relay

CALLBACKS = Counter(
    "relay_callbacks_total",
    "CallFire callbacks received, by outcome",
    # accepted, duplicate, unauthorized, rate_limited, invalid, too_large, unavailable, stale
    ["outcome"],
)
SIGNATURE_FAILURES = Counter("relay_signature_failures_total", "Callbacks refused for their signature")
DUPLICATES = Counter("relay_duplicates_total", "Callbacks dropped as repeats inside the dedup window")
EVENTS_ENQUEUED = Counter("relay_events_enqueued_total", "Events appended to the streams")
HTTP_MALFORMED = Counter("relay_http_malformed_total", "Requests refused by the HTTP parser (400)")
ENQUEUE_SECONDS = Histogram(
    "relay_enqueue_seconds",
    "Time from a callback read whole to Redis acknowledging its events",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
INGEST_BATCH = Histogram(
    "relay_ingest_batch_size",
    "Callbacks written to Redis in one pipelined round trip",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

DELIVERIES = Counter(
    "relay_deliveries_total",
    "Delivery attempts, by outcome and HTTP status class",
    ["outcome", "status_class"],  # outcome: delivered, retry, dead, refused; class: 2xx..5xx, error
)
DELIVERY_SECONDS = Histogram(
    "relay_delivery_seconds",
    "Duration of one delivery attempt",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RETRIES_SCHEDULED = Counter("relay_retries_scheduled_total", "Delivery retries scheduled in Redis")
BREAKERS = Gauge(
    "relay_breakers",
    "Webhooks by circuit-breaker state (closed, open, half_open), as this worker last read them",
    ["state"],
)
DELIVERIES_DEFERRED = Counter(
    "relay_deliveries_deferred_total",
    "Deliveries put off through the scheduled set without an attempt, by kind",
    ["kind"],  # host_busy: its host's queue would be too long; single_use: another holds the lease;
    # rate_limit: its webhook's rateLimit is spent for now; breaker_open: its breaker is open
)
DEAD_LETTERS = Counter("relay_dead_letters_total", "Entries sent to the dead letters, by kind", ["kind"])
WEBHOOKS_DISABLED = Counter(
    "relay_webhooks_disabled_total", "Webhooks disabled because a callback answered 410"
)
WEBHOOKS_AUTO_DISABLED = Counter(
    "relay_webhooks_auto_disabled_total",
    "Webhooks disabled because they kept failing with no success for RELAY_DISABLE_AFTER",
)
GROUP_LAG = Gauge("relay_group_lag", "Entries not yet read by the consumer group", ["stream"])
GROUP_PENDING = Gauge("relay_group_pending", "Entries read but not yet acknowledged", ["stream"])
GROUP_LAG_SECONDS = Gauge(
    "relay_group_lag_seconds",
    "Seconds since the oldest entry the consumer group has not acknowledged (read or not) was "
    "added to the stream; 0 when every entry is acknowledged",
    ["stream"],
)
RETRY_SET_SIZE = Gauge(
    "relay_retry_set_size",
    "Deliveries waiting in the scheduled-retries sets, all partitions: retries not yet due and "
    "deliveries put off (host busy, rate limit, breaker open)",
)
# Not "relay_retries_scheduled": the counter relay_retries_scheduled_total owns that family name.
DEAD_LETTERS_STORED = Gauge("relay_dead_letters_stored", "Dead letters currently stored")
WEBHOOKS_CACHED = Gauge("relay_webhooks_cached", "Webhooks in this worker's cached view")
WEBHOOK_SECRETS_UNREADABLE = Gauge(
    "relay_webhook_secrets_unreadable",
    "Webhooks in this worker's view whose stored secret no key of RELAY_SECRET_KEYS opens",
)
DELIVERIES_SECRET_UNREADABLE = Counter(
    "relay_deliveries_secret_unreadable_total",
    "Delivery attempts held back, unsent, because no key of RELAY_SECRET_KEYS opens their "
    "webhook's stored secret (retried on the schedule, then dead letters of kind secret-unreadable)",
)

BUILD = Info("relay_build", "The relay's version and the versions it runs on")
"""Renders ``relay_build_info{version=...,python=...,aiohttp=...,redis_py=...} 1``."""


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - every one is a dependency
        return "unknown"


BUILD.info(
    {
        "version": relay.__version__,
        "python": platform.python_version(),
        "aiohttp": _version("aiohttp"),
        "redis_py": _version("redis"),
    }
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
