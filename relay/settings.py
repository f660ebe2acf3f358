"""The one settings object: environment variables (``RELAY_*``), ``*_FILE`` secrets, a config file.

Built once at start-up (``Settings.load()``), frozen, and passed down. Tests build it directly:
``Settings(redis_url=..., callfire_secrets="s3cret")``.

Precedence, highest first: keyword arguments, ``RELAY_<NAME>`` variables, ``RELAY_<NAME>_FILE``
(a file holding the value, for Docker and Kubernetes secrets), the file named by ``RELAY_CONFIG``
(TOML or YAML), then the defaults below.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from relay.egress import EgressAllow
from relay.ingest.clients import TrustedProxies
from relay.secrets import ApiCredentials, CallfireSecrets, SecretKeys
from relay.store.connect import options_problem, url_problem
from relay.webhooks.model import check_callback_url

ENV_PREFIX = "RELAY_"


class ConfigError(ValueError):
    """A configuration source (RELAY_CONFIG, a RELAY_<NAME>_FILE) that cannot be read or parsed."""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


_LONGEST = 10 * 365 * 86400.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """``"5s"``, ``"250ms"``, ``"2h"``, ``"1.5"`` (seconds) or a number -> seconds as a float."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 5s, 250ms, 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 5s, 250ms, 2h")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds > _LONGEST:
        raise ValueError(f"{value!r} is longer than ten years")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_schedule(value: Any) -> tuple[float, ...]:
    """``"5s, 5m, 30m"`` -> ``(5.0, 300.0, 1800.0)``; an empty schedule means no retries."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(parse_duration(item) for item in items if str(item).strip())


Duration = Annotated[float, BeforeValidator(parse_duration)]
Schedule = Annotated[tuple[float, ...], NoDecode, BeforeValidator(parse_schedule)]


def _secrets(value: Any) -> CallfireSecrets:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw if isinstance(raw, CallfireSecrets) else CallfireSecrets.parse(str(raw or ""))


def _credentials(value: Any) -> ApiCredentials:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw if isinstance(raw, ApiCredentials) else ApiCredentials.parse(str(raw or ""))


def _secret_keys(value: Any) -> SecretKeys:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw if isinstance(raw, SecretKeys) else SecretKeys.parse(str(raw or ""))


def _egress(value: Any) -> EgressAllow:
    return value if isinstance(value, EgressAllow) else EgressAllow.parse(value)


def _proxies(value: Any) -> TrustedProxies:
    return value if isinstance(value, TrustedProxies) else TrustedProxies.parse(value)


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
    redis_url: str | None = Field(
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
    trusted_proxies: Annotated[TrustedProxies, NoDecode, BeforeValidator(_proxies)] = Field(
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
    callfire_secrets: Annotated[CallfireSecrets, NoDecode, BeforeValidator(_secrets)] = Field(
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
    api_credentials: Annotated[ApiCredentials, NoDecode, BeforeValidator(_credentials)] = Field(
        ApiCredentials(),
        description="Comma-separated `user:password` pairs for HTTP Basic on /v2 (several for "
        "rotation). Unset: the API answers 403.",
    )
    webhooks_file: Path | None = Field(
        None, description="A YAML file of webhooks applied at start (subscriptions kept in git)."
    )
    secret_keys: Annotated[SecretKeys, NoDecode, BeforeValidator(_secret_keys)] = Field(
        SecretKeys(),
        description="Comma-separated Fernet keys sealing webhook secrets in Redis: the first "
        "seals, every one opens (rotation: docs/operations.md). Unset: secrets stay in plain text.",
    )
    api_url: str | None = Field(
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
    egress_allow: Annotated[EgressAllow, NoDecode, BeforeValidator(_egress)] = Field(
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
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="`json` for production, `console` for people; `auto` picks by TTY."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="`debug`, `info`, `warning` or `error`, in any case."
    )

    @field_validator("redis_url")
    @classmethod
    def _well_formed_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("api_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        check_callback_url(value)
        parts = urlsplit(value)
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("must have no query or fragment")
        if parts.username is not None:
            raise ValueError("must have no user:password")
        return value

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
    def _cluster_needs_url(self) -> Settings:
        if not self.redis_cluster:
            return self
        if not self.redis_url:
            raise ValueError("RELAY_REDIS_CLUSTER needs RELAY_REDIS_URL naming a cluster node")
        if not self.redis_url.startswith(("redis://", "rediss://")):
            raise ValueError("RELAY_REDIS_CLUSTER needs a redis:// or rediss:// RELAY_REDIS_URL")
        return self

    @model_validator(mode="after")
    def _redis_options(self) -> Settings:
        """The URL's query options, as redis-py takes them for this kind of client."""
        problem = options_problem(self.redis_url, cluster=self.redis_cluster) if self.redis_url else None
        if problem:
            raise ValueError(f"RELAY_REDIS_URL: {problem}")
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
            _FileValueSource(settings_cls),
            _ConfigFileSource(settings_cls),
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


class _FileValueSource(PydanticBaseSettingsSource):
    """``RELAY_<NAME>_FILE=/run/secrets/x``: the value is the file's content, stripped."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{ENV_PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            raise ConfigError(
                f"{ENV_PREFIX}{field_name.upper()}_FILE: cannot read {path}: {exc.strerror}"
            ) from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The file named by ``RELAY_CONFIG``: TOML (``.toml``) or YAML, keys as the field names."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ reads the whole file

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if not path:
            return {}
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"RELAY_CONFIG: cannot read {path}: {exc.strerror}") from None
        try:
            data = tomllib.loads(text) if path.endswith(".toml") else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"RELAY_CONFIG: {path} is not valid: {_one_line(exc)}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"RELAY_CONFIG: {path} must hold a mapping of settings")
        return {str(key).lower(): value for key, value in data.items()}
