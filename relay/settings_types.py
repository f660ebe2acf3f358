"""The types of the settings' values, and how text (an environment variable, a file, a config
file's value) becomes each: durations, retry schedules, the secret lists, CIDR lists, the Redis
and API URLs. Pure; ``relay.settings.Settings`` declares its fields with them."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode

from relay.egress import EgressAllow
from relay.ingest.clients import TrustedProxies
from relay.secrets import ApiCredentials, CallfireSecrets, SecretKeys
from relay.store.connect import options_problem, url_problem
from relay.webhooks.model import check_callback_url

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


def _redis_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def client_problem(url: str | None, *, cluster: bool) -> str | None:
    """What makes ``url`` unfit for the client RELAY_REDIS_CLUSTER asks for (a cluster needs a
    redis:// or rediss:// node; the query options must be ones redis-py takes), naming the
    settings; None when it is fit."""
    if cluster and not url:
        return "RELAY_REDIS_CLUSTER needs RELAY_REDIS_URL naming a cluster node"
    if not url:
        return None
    if cluster and not url.startswith(("redis://", "rediss://")):
        return "RELAY_REDIS_CLUSTER needs a redis:// or rediss:// RELAY_REDIS_URL"
    problem = options_problem(url, cluster=cluster)
    return f"RELAY_REDIS_URL: {problem}" if problem else None


def _api_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    check_callback_url(value)
    parts = urlsplit(value)
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("must have no query or fragment")
    if parts.username is not None:
        raise ValueError("must have no user:password")
    return value


def _any_case(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Secrets = Annotated[CallfireSecrets, NoDecode, BeforeValidator(_secrets)]
Credentials = Annotated[ApiCredentials, NoDecode, BeforeValidator(_credentials)]
SealingKeys = Annotated[SecretKeys, NoDecode, BeforeValidator(_secret_keys)]
Egress = Annotated[EgressAllow, NoDecode, BeforeValidator(_egress)]
Proxies = Annotated[TrustedProxies, NoDecode, BeforeValidator(_proxies)]
RedisUrl = Annotated[str | None, AfterValidator(_redis_url)]
"""A Redis URL whose form is right (its query options are checked with RELAY_REDIS_CLUSTER)."""
ApiUrl = Annotated[str | None, AfterValidator(_api_url)]
"""An http(s) base URL without query, fragment or user:password."""
AnyCase = BeforeValidator(_any_case)
"""For a choice of words: read in any case, spaces around ignored."""
