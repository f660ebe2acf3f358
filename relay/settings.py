"""The one settings object: environment variables (``RELAY_*``), ``*_FILE`` secrets, a config file.

Built once at start-up (``Settings.load()``), frozen, and passed down. Tests build it directly:
``Settings(redis_url=..., callfire_secrets="s3cret")``.

Precedence, highest first: keyword arguments, ``RELAY_<NAME>`` variables, ``RELAY_<NAME>_FILE``
(a file holding the value, for Docker and Kubernetes secrets), the file named by ``RELAY_CONFIG``
(TOML or YAML), then the defaults below. The values' types and parsing: ``relay.settings_types``;
the file sources: ``relay.settings_sources``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from relay.egress import EgressAllow
from relay.ingest.clients import TrustedProxies
from relay.secrets import ApiCredentials, CallfireSecrets, SecretKeys
from relay.settings_sources import ENV_PREFIX, ConfigFileSource, FileValueSource
from relay.settings_types import (
    AnyCase,
    ApiUrl,
    Credentials,
    Duration,
    Egress,
    Proxies,
    RedisUrl,
    Schedule,
    SealingKeys,
    Secrets,
    client_problem,
)

__all__ = ["ENV_PREFIX", "Settings"]


class Settings(BaseSettings):
    """Every setting of the relay. The README's configuration table is generated from this."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
    )

    # --- Redis -----------------------------------------------------------------------------
    redis_url: RedisUrl = Field(
        None,
        description="Redis to use (redis://, rediss://, unix:// or redis+sentinel://). "
        "Unset: start an embedded Redis with AOF under RELAY_DATA_DIR.",
    )
    redis_cluster: bool = Field(False, description="Talk to RELAY_REDIS_URL as a Redis Cluster.")
    data_dir: Path = Field(
        Path(".relay-data"), description="Where the embedded Redis keeps its append-only file, log and port."
    )
    key_prefix: str = Field("relay", pattern=r"^[A-Za-z0-9_.-]+$", description="Prefix of every Redis key.")
    partitions: int = Field(
        4,
        ge=1,
        le=1024,
        description="Stream partitions (hash-tagged; spread over Redis Cluster shards). "
        "Only ever raise it on a running system.",
    )
    redis_timeout: Duration = Field(
        2.0, description="Bound on a Redis call on the ingest path; past it the callback gets 503."
    )
    redis_min_replicas: int = Field(
        0,
        ge=0,
        description="Acknowledge a callback only once this many replicas of its Redis shard hold "
        "it (WAIT, up to half of RELAY_REDIS_TIMEOUT; else 503). 0: once the primary has it.",
    )

    # --- HTTP ------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="Port of the HTTP server: callbacks and probes (and, without "
        "RELAY_ADMIN_PORT, everything else).",
    )
    admin_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the admin surface (/v2, /metrics, /openapi.json and every other "
        "page but callbacks and probes), kept off the port CallFire reaches. Unset: one port.",
    )
    admin_host: str | None = Field(None, description="Address the admin port binds. Unset: RELAY_HOST.")
    trusted_proxies: Proxies = Field(
        TrustedProxies(),
        description="CIDRs of the proxies (the ingress) whose X-Forwarded-For names the client "
        "for failure limits and logs: its rightmost address not itself trusted. Unset: the peer.",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=256, description="Largest callback body accepted; larger gets 413."
    )
    max_events_per_callback: int = Field(
        1000, ge=1, description="Most events one callback may carry; more gets 413."
    )
    read_timeout: Duration = Field(
        15.0,
        gt=0,
        description="A client that does not finish sending a request body this long after its "
        "headers is cut off (408).",
    )
    keepalive_timeout: Duration = Field(
        15.0,
        gt=0,
        description="Idle keep-alive connections close after this; a request's headers must "
        "also arrive within it (from the connection opening or the previous response).",
    )
    auth_failure_limit: int = Field(
        20,
        ge=0,
        description="Failed signatures (or /v2 credentials) one client address (IPv6: its /64) "
        "may send per RELAY_AUTH_FAILURE_WINDOW; past that a wrong one gets 429 with Retry-After "
        "(a valid one is still accepted). 0: no limit.",
    )
    auth_failure_window: Duration = Field(
        60.0, gt=0, description="The window RELAY_AUTH_FAILURE_LIMIT counts failures in."
    )

    # --- Ingest ----------------------------------------------------------------------------
    callfire_secrets: Secrets = Field(
        CallfireSecrets(),
        description="Comma-separated secrets that sign CallFire callbacks; `ID:SECRET` binds one "
        "to CallFire webhook id ID. Several may be valid at once (rotation).",
    )
    allow_unsigned: bool = Field(
        False, description="Accept callbacks without X-CallFire-Signature (testing only)."
    )
    dedup_window: Duration = Field(
        86400.0,
        gt=0,
        description="A repeated callback body inside this window is not enqueued again.",
    )
    max_callback_age: Duration | None = Field(
        None, description="Refuse callbacks whose `timestamp` is older than this (unset: no limit)."
    )
    stream_retention: Duration = Field(
        3600.0,
        description="Acknowledged events are kept this long on the stream (for /v2/events, "
        "backfill and `events tail`).",
    )

    # --- Webhooks API ----------------------------------------------------------------------
    api_credentials: Credentials = Field(
        ApiCredentials(),
        description="Comma-separated `user:password` pairs for HTTP Basic on /v2 (several for "
        "rotation). Unset: the API answers 403.",
    )
    webhooks_file: Path | None = Field(
        None, description="A YAML file of webhooks applied at start (subscriptions kept in git)."
    )
    secret_keys: SealingKeys = Field(
        SecretKeys(),
        description="Comma-separated Fernet keys sealing webhook secrets in Redis: the first "
        "seals, every one opens (rotation: docs/operations.md). Unset: secrets stay in plain text.",
    )
    api_url: ApiUrl = Field(
        None,
        description="The API's base URL as its clients reach it (behind a proxy), e.g. "
        "`https://relay.example.com` (or `.../v2`, the same): the host, basePath and schemes of "
        "GET /v2/api-docs/swagger.json. Unset: those of each request.",
    )

    # --- Delivery --------------------------------------------------------------------------
    retry_schedule: Schedule = Field(
        (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        description="Delays between delivery attempts, each with jitter; after the last, dead letter.",
    )
    delivery_timeout: Duration = Field(10.0, gt=0, description="Timeout of one delivery attempt.")
    reclaim_idle: Duration = Field(
        60.0, gt=0, description="Entries pending this long on a silent worker are reclaimed."
    )
    egress_allow: Egress = Field(
        EgressAllow(),
        description="CIDRs of loopback or private networks callbacks may reach "
        "(e.g. `127.0.0.0/8,10.0.0.0/8`). Link-local and metadata addresses are always refused.",
    )
    max_in_flight: int = Field(256, ge=1, description="Deliveries in flight per worker process.")
    max_per_host: int = Field(
        32,
        ge=1,
        description="Deliveries in flight per callback host, per worker process: N worker processes "
        "allow up to N times this to one host together (a webhook's `rateLimit` holds across all).",
    )
    shutdown_grace: Duration = Field(
        20.0, description="On SIGTERM, in-flight deliveries get this long to finish."
    )
    attempts_kept: int = Field(
        50,
        ge=0,
        description="Recent delivery attempts kept per webhook, and per event (as long as the "
        "event is retained): what /v2/events and a dead letter's history show.",
    )
    breaker_failures: int = Field(
        10,
        ge=0,
        description="Failed attempts in a row to one webhook, across all workers, after which its "
        "deliveries pause (circuit breaker) until a probe succeeds; 0: no breaker.",
    )
    breaker_max_cooldown: Duration = Field(
        300.0,
        gt=0,
        description="Longest pause of an open circuit breaker before its next probe (5s first, "
        "doubling after each failed probe).",
    )
    disable_after: Duration = Field(
        432000.0,
        description="A webhook whose attempts keep failing with no success for this long is "
        "disabled (`enabled` false), logged and counted; 0: never.",
    )
    dead_letter_retention: Duration | None = Field(
        None, description="Dead letters older than this are dropped (unset: kept until replayed or purged)."
    )
    workers: int = Field(1, ge=0, description="Worker loops `relay run` starts beside the listener.")
    stall_timeout: Duration = Field(
        60.0,
        gt=0,
        description="A delivery loop that has not gone round for this long is stalled: /healthz "
        "answers 503 and the process exits with code 3, for its supervisor to restart it.",
    )

    # --- Logs ------------------------------------------------------------------------------
    log_format: Annotated[Literal["auto", "json", "console"], AnyCase] = Field(
        "auto", description="`json` for production, `console` for people; `auto` picks by TTY."
    )
    log_level: Annotated[Literal["debug", "info", "warning", "error"], AnyCase] = Field(
        "info", description="`debug`, `info`, `warning` or `error`, in any case."
    )

    @field_validator("admin_port")
    @classmethod
    def _admin_port_apart(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value == info.data.get("port"):
            raise ValueError("must differ from RELAY_PORT (unset it to serve everything on one port)")
        return value

    @property
    def admin_bind(self) -> str:
        """The address the admin port binds."""
        return self.admin_host or self.host

    @model_validator(mode="after")
    def _redis_client(self) -> Settings:
        problem = client_problem(self.redis_url, cluster=self.redis_cluster)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            FileValueSource(settings_cls),
            ConfigFileSource(settings_cls),
        )

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build from the environment (and RELAY_CONFIG); what the CLI calls once at start."""
        return cls(**overrides)

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{ENV_PREFIX}{field.upper()}"

    @classmethod
    def unknown_env(cls) -> list[str]:
        """``RELAY_*`` variables in the environment that name no setting (typos, stale names)."""
        known = {cls.env_name(name) for name in cls.model_fields} | {f"{ENV_PREFIX}CONFIG"}
        known |= {f"{name}_FILE" for name in known}
        return sorted(k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
