"""The judgements of ``relay check``: pure functions of the settings and of the facts one Redis
server gives about itself (``ServerFacts``), each a ``Finding``. ``relay.cli.check`` reads the
facts and prints the findings."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relay.settings import Settings

MIN_VERSION = (6, 2)
PLAIN_SECRETS = (
    "no RELAY_SECRET_KEYS: webhook secrets are stored in plain text, and anyone who can read "
    "Redis (or a copy of its files) can sign as the relay; set keys (docs/operations.md)"
)
RETAINED_EVENT_BYTES = 1850
"""Redis memory per retained event: its stream entry (~1,220 B for a ~1 KB CallFire event) and
its outcome log (~625 B: one webhook matched, one attempt), measured by ``python -m bench.retained``
(docs/operations.md). Each further attempt record adds ~225 B."""
Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


@dataclass(frozen=True, kw_only=True)
class ServerFacts:
    """What one Redis server says about itself. ``None``: it would not say (CONFIG refused)."""

    name: str
    version: tuple[int, ...]
    aof: bool
    appendfsync: str | None
    save: str | None
    policy: str
    replicas: int


def facts_from(name: str, info: Mapping[str, Any], config: Mapping[str, str]) -> ServerFacts:
    version = tuple(int(p) for p in str(info.get("redis_version", "0")).split(".") if p.isdigit())
    return ServerFacts(
        name=name,
        version=version,
        aof=str(info.get("aof_enabled", "0")) == "1",
        appendfsync=config.get("appendfsync"),
        save=config.get("save"),
        policy=str(info.get("maxmemory_policy", "unknown")),
        replicas=int(info.get("connected_slaves", 0)),
    )


def _warn(text: str) -> Finding:
    return Finding("warning", text)


def settings_findings(settings: Settings, unknown_env: list[str]) -> list[Finding]:
    """What the settings alone say: typos, missing secrets, inconsistent timeouts."""
    found: list[Finding] = []
    known = [Settings.env_name(n) for n in Settings.model_fields]
    for name in unknown_env:
        close = difflib.get_close_matches(name.removesuffix("_FILE"), known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        found.append(Finding("warning", f"{name} is not a setting and is ignored{hint}"))
    if not settings.callfire_secrets and not settings.allow_unsigned:
        found.append(
            _warn(
                "no RELAY_CALLFIRE_SECRETS: `relay serve` and `relay run` refuse to start (but with --demo)"
            )
        )
    if settings.allow_unsigned:
        found.append(_warn("RELAY_ALLOW_UNSIGNED=true: anyone can post callbacks (testing only)"))
    if not settings.api_credentials:
        found.append(_warn("no RELAY_API_CREDENTIALS: the Webhooks API answers 403 to everyone"))
    if not settings.secret_keys and settings.redis_url is not None:
        found.append(_warn(PLAIN_SECRETS))
    if settings.trusted_proxies.everyone():
        found.append(
            _warn(
                "RELAY_TRUSTED_PROXIES trusts every address (0.0.0.0/0 or ::/0): any client can "
                "name itself in X-Forwarded-For and dodge the failure limits; name the ingress's range"
            )
        )
    if settings.reclaim_idle <= settings.delivery_timeout:
        found.append(
            Finding(
                "error",
                "RELAY_RECLAIM_IDLE must exceed RELAY_DELIVERY_TIMEOUT, or a delivery still in "
                "flight is reclaimed and sent twice",
            )
        )
    if settings.redis_url is None:
        found.append(
            Finding(
                "warning",
                f"no RELAY_REDIS_URL: the relay uses an embedded Redis under {settings.data_dir} "
                "(checked below while it runs; one machine only; set RELAY_REDIS_URL in production)",
            )
        )
    return found


def _persistence(facts: ServerFacts) -> Finding:
    if facts.aof:
        if facts.appendfsync == "no":
            return Finding(
                "warning",
                f"{facts.name}: appendfsync no: a machine crash loses the callbacks of the last "
                "~30 s; use everysec",
            )
        return Finding("ok", f"{facts.name}: AOF on (appendfsync {facts.appendfsync or 'unknown'})")
    if facts.save is None:
        return Finding(
            "warning",
            f"{facts.name}: AOF is off and the RDB config cannot be read (CONFIG GET refused): "
            "make sure Redis persists, or a restart loses accepted callbacks",
        )
    if not facts.save.strip():
        return Finding(
            "warning",
            f"{facts.name}: persistence is off (no AOF, no RDB): a Redis restart loses every "
            "accepted callback; set appendonly yes",
        )
    return Finding(
        "warning",
        f"{facts.name}: RDB snapshots only (save {facts.save}): a crash loses the callbacks "
        "accepted since the last snapshot; set appendonly yes",
    )


def server_findings(facts: ServerFacts, settings: Settings) -> list[Finding]:
    """What one server's facts mean for the relay."""
    found: list[Finding] = []
    version = ".".join(map(str, facts.version))
    if facts.version < MIN_VERSION:
        found.append(Finding("error", f"{facts.name}: Redis {version} is too old; the relay needs 6.2+"))
    else:
        found.append(Finding("ok", f"{facts.name}: Redis {version}"))
    found.append(_persistence(facts))
    if facts.policy != "noeviction":
        found.append(
            Finding(
                "warning",
                f"{facts.name}: maxmemory-policy {facts.policy} evicts keys under memory pressure, "
                "and with them streams and dedup claims; set noeviction",
            )
        )
    if facts.replicas < settings.redis_min_replicas:
        found.append(
            Finding(
                "error",
                f"{facts.name}: {facts.replicas} replica(s) connected but RELAY_REDIS_MIN_REPLICAS="
                f"{settings.redis_min_replicas}: every callback would get 503",
            )
        )
    return found


def spread_finding(shards: int, used: int, partitions: int) -> Finding:
    """Whether the partitions' hash tags reach every shard of a cluster."""
    if used < shards:
        return Finding(
            "warning",
            f"RELAY_PARTITIONS={partitions} puts streams on {used} of {shards} shards: raise it "
            "(a few per shard) to use them all",
        )
    return Finding("ok", f"{partitions} partitions spread over all {shards} shards")


def retention_finding(settings: Settings, rate: float | None, maxmemory: int, source: str) -> Finding:
    """Whether RELAY_STREAM_RETENTION x the ingest rate x the bytes per retained event fits in
    half of Redis's maxmemory (the other half: backlog, retries, dedup claims, webhooks). Pure."""
    if rate is None:
        return Finding("ok", "ingest rate not known yet (streams span under a minute; see --ingest-rate)")
    need = settings.stream_retention * rate * RETAINED_EVENT_BYTES
    text = (
        f"RELAY_STREAM_RETENTION={settings.stream_retention:g}s x {rate:.1f} events/s ({source}) x "
        f"{RETAINED_EVENT_BYTES} B = {need / 2**20:.0f} MiB"
    )
    if maxmemory <= 0:
        return Finding("ok", f"{text}; maxmemory is unset")
    if need > maxmemory / 2:
        return Finding(
            "warning",
            f"{text}, over half of maxmemory ({maxmemory / 2**20:.0f} MiB): lower the retention or "
            "raise maxmemory, or Redis fills and callbacks get 503",
        )
    return Finding("ok", f"{text}, within half of maxmemory ({maxmemory / 2**20:.0f} MiB)")


def exit_code(findings: list[Finding], strict: bool) -> int:
    failing: set[Level] = {"error", "warning"} if strict else {"error"}
    return 1 if any(f.level in failing for f in findings) else 0


def strict_summary(findings: list[Finding], strict: bool) -> str | None:
    """The last line when ``--strict`` turns warnings into exit 1 (with no error to say so)."""
    warnings = sum(f.level == "warning" for f in findings)
    if not strict or not warnings or any(f.level == "error" for f in findings):
        return None
    return f"strict: {warnings} warning{'s' if warnings > 1 else ''}, exit 1"
