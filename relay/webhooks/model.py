"""The Webhook (callfire.md section 4): what is stored, what a client may write, what it reads. Pure.

- ``Webhook``: the stored webhook, with its secret; what workers use. Frozen.
- ``WebhookSpec``: every writable field, validated as a whole (resource known, events supported,
  callback an absolute http(s) URL, ``fields`` a valid selector, ``filter`` a valid filter
  (``relay.webhooks.filters``), ``expiresAt`` not in the past).
- ``Selection``: the checks on what a webhook selects (resource, events, ``fields``, ``filter``),
  shared by ``WebhookSpec`` and the dry run's webhook.
- ``WebhookBody``: a request body as sent (``POST`` and ``PUT``): every field optional, strict
  JSON types; read-only fields (``id``, ``createdAt``, ``updatedAt``) are accepted and ignored.
- ``WebhookOut``: what the API returns: never the secret; absent optional fields left out.

Null in a body: on a field that may be empty (``name``, ``secret``, ``expiresAt``, ``fields``,
``filter``, ``rateLimit``) it empties it; on any other field it means "not given" (``PUT`` keeps
the current value).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from relay import selector
from relay.catalog import RESOURCES, canonical_event
from relay.webhooks import filters
from relay.webhooks.json_types import (
    DOCS,
    FILTER_SCHEMA,
    NULLABLE,
    RATE_LIMIT_MAX,
    READ_ONLY,
    Int64,
    JsonInt64,
    integral,
)
from relay.webhooks.sealing import SealedSecret


def _doc(alias: str) -> Any:
    return Field(alias=alias, description=DOCS[alias])


class _Writable(BaseModel):
    """The writable fields, shared by the spec and the stored webhook."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    name: str | None = Field(None, description=DOCS["name"])
    resource: str = Field(description=DOCS["resource"])
    events: tuple[str, ...] = Field(description=DOCS["events"], json_schema_extra={"uniqueItems": True})
    callback: str = Field(description=DOCS["callback"])
    secret: SecretStr | None = Field(None, description=DOCS["secret"])
    enabled: bool = Field(True, description=DOCS["enabled"])
    single_use: bool = Field(False, alias="singleUse", description=DOCS["singleUse"])
    expires_at: Int64 | None = Field(None, alias="expiresAt", description=DOCS["expiresAt"])
    fields: str | None = Field(None, description=DOCS["fields"])
    non_strict_ssl: bool = Field(False, alias="nonStrictSsl", description=DOCS["nonStrictSsl"])
    filter: dict[str, Any] | None = Field(None, description=DOCS["filter"])
    rate_limit: int | None = Field(
        None, alias="rateLimit", ge=1, le=RATE_LIMIT_MAX, description=DOCS["rateLimit"]
    )


class Selection(BaseModel):
    """The checks on what a webhook selects; a model with those fields inherits them."""

    @field_validator("resource", check_fields=False)
    @classmethod
    def _known_resource(cls, value: str) -> str:
        if value not in RESOURCES:
            raise ValueError(f"unknown resource {value!r}; known: {', '.join(RESOURCES)}")
        return value

    @field_validator("fields", check_fields=False)
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        if not value:
            return None
        selector.parse(value)  # SelectorError is a ValueError: pydantic reports it on `fields`
        return value

    @field_validator("filter", check_fields=False)
    @classmethod
    def _valid_filter(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            filters.compile_filter(value)
        except filters.FilterError as exc:  # reported on `filter.<at>` (relay.api.http.describe)
            raise PydanticCustomError("filter", "{reason}", {"reason": exc.reason, "at": exc.at}) from None
        return value

    @field_validator("events", check_fields=False)
    @classmethod
    def _supported_events(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one event is needed")
        resource = info.data.get("resource")
        if resource is None:
            return value  # the resource is unknown: reported on `resource`
        canonical: list[str] = []
        for event in value:
            name = canonical_event(resource, event)
            if name is None:
                supported = ", ".join(RESOURCES[resource])
                raise ValueError(f"{event!r} is not an event of {resource} ({supported})")
            if name not in canonical:
                canonical.append(name)
        return tuple(canonical)


class WebhookSpec(_Writable, Selection):
    """A complete, valid set of writable fields. ``context={"now_ms": ...}`` checks ``expiresAt``."""

    @field_validator("callback")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        check_callback_url(value)
        return value

    @field_validator("expires_at")
    @classmethod
    def _not_past(cls, value: int | None, info: ValidationInfo) -> int | None:
        now_ms = (info.context or {}).get("now_ms")
        if value is not None and now_ms is not None and value < now_ms:
            raise ValueError("is in the past")
        return value


def check_callback_url(value: str) -> None:
    """Raise ValueError unless ``value`` is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")


class Webhook(_Writable):
    """The stored webhook, what workers use. Serialised by alias; the secret included: in plain
    text under ``secret``, or sealed (``relay.webhooks.sealing``) under ``sealedSecret``."""

    id: Int64
    created_at: Int64 = Field(alias="createdAt")
    updated_at: Int64 = Field(alias="updatedAt")

    def live(self, now_ms: int) -> bool:
        """Enabled and not expired."""
        return self.enabled and (self.expires_at is None or now_ms < self.expires_at)

    @functools.cached_property
    def predicate(self) -> filters.Predicate | None:
        """Its filter compiled, once for this version of the webhook (and once per distinct
        filter); None without a filter. A stored filter that does not compile (every write checks
        it, so only a damaged table holds one) lets nothing through: ``filters.nothing``."""
        if self.filter is None:
            return None
        try:
            return filters.compiled(self.filter)
        except (ValueError, TypeError):
            return filters.nothing

    def spec(self) -> WebhookSpec:
        """Its writable fields, as they are (not re-validated)."""
        values = {name: getattr(self, name) for name in WebhookSpec.model_fields}
        return WebhookSpec.model_construct(**values)

    def to_storage(self) -> bytes:
        data = self.model_dump(mode="json", by_alias=True)
        secret = self.secret
        if isinstance(secret, SealedSecret):
            data["secret"], data["sealedSecret"] = None, secret.token
        else:
            data["secret"] = secret.get_secret_value() if secret is not None else None
        return orjson.dumps(data)

    @classmethod
    def from_storage(cls, raw: bytes | str) -> Webhook:
        """Raises ``pydantic.ValidationError`` (or ``orjson.JSONDecodeError``, a ValueError)."""
        text = raw if isinstance(raw, bytes) else raw.encode()
        if b'"sealedSecret"' not in text:  # a plain secret, or none: parsed straight from JSON
            return cls.model_validate_json(text)
        data = orjson.loads(text)
        if isinstance(data, dict) and data.get("sealedSecret") is not None:
            data["secret"] = SealedSecret(data.pop("sealedSecret"))
        return cls.model_validate(data)

    def out(self) -> dict[str, Any]:
        """What the API returns: no secret, absent optional fields left out."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"secret"}, exclude_none=True)
        return {"id": data.pop("id"), **data}


def stored(spec: WebhookSpec, *, webhook_id: int, created_at: int, now_ms: int) -> Webhook:
    values = {name: getattr(spec, name) for name in WebhookSpec.model_fields}
    return Webhook(id=webhook_id, created_at=created_at, updated_at=now_ms, **values)


class WebhookBody(BaseModel):
    """A request body as a client sends it: any subset of the fields, JSON types strictly."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    id: JsonInt64 | None = Field(None, description="Read-only: ignored.")
    name: str | None = Field(None, max_length=1024, description=DOCS["name"])
    resource: str | None = Field(None, max_length=64, description=DOCS["resource"])
    events: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=32, description=DOCS["events"] + " Repeats are merged."
    )
    callback: str | None = Field(None, max_length=2048, description=DOCS["callback"])
    secret: str | None = Field(
        None, max_length=1024, description=DOCS["secret"], json_schema_extra={"writeOnly": True}
    )
    enabled: bool | None = Field(None, description=DOCS["enabled"])
    singleUse: bool | None = Field(None, description=DOCS["singleUse"])
    expiresAt: JsonInt64 | None = Field(None, description=DOCS["expiresAt"])
    fields: str | None = Field(
        None,
        max_length=2048,
        description=DOCS["fields"],
        json_schema_extra={"pattern": f"^$|{selector.PATTERN}"},
    )
    nonStrictSsl: bool | None = Field(None, description=DOCS["nonStrictSsl"])
    filter: dict[str, Any] | None = Field(None, description=DOCS["filter"], json_schema_extra=FILTER_SCHEMA)
    rateLimit: Annotated[int, BeforeValidator(integral)] | None = Field(
        None, ge=1, le=RATE_LIMIT_MAX, description=DOCS["rateLimit"]
    )
    createdAt: JsonInt64 | None = Field(None, description="Read-only: ignored.")
    updatedAt: JsonInt64 | None = Field(None, description="Read-only: ignored.")

    def changes(self) -> dict[str, Any]:
        """The writable fields the body sets, by alias, after the null rule above."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            if name in READ_ONLY:
                continue
            value = getattr(self, name)
            if value is None and name not in NULLABLE:
                continue
            out[name] = value
        return out


def merged(current: WebhookSpec | None, body: WebhookBody, now_ms: int) -> WebhookSpec:
    """The spec after applying ``body`` to ``current`` (None: a create), validated as a whole.

    ``expiresAt`` is checked against ``now_ms`` only when the body sets it.
    Raises ``pydantic.ValidationError`` naming the offending fields by their JSON names.
    """
    values: dict[str, Any] = {}
    if current is not None:
        values = current.model_dump(by_alias=True)
    changes = body.changes()
    values.update(changes)
    context = {"now_ms": now_ms} if "expiresAt" in changes else {}
    return WebhookSpec.model_validate(values, context=context, by_alias=True)


class WebhookOut(BaseModel):
    """A webhook as the API returns it (its schema in /openapi.json)."""

    id: Int64
    name: str | None = None
    resource: str
    events: list[str] = Field(json_schema_extra={"uniqueItems": True})
    callback: str
    enabled: bool
    singleUse: bool
    expiresAt: Int64 | None = None
    fields: str | None = None
    nonStrictSsl: bool
    filter: dict[str, Any] | None = Field(None, description=DOCS["filter"])
    rateLimit: int | None = None
    createdAt: Int64
    updatedAt: Int64
