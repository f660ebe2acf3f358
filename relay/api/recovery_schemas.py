"""Query parameters and bodies of the recovery API (dead letters, recover, backfill, events):
time windows, the dead-letter filter, and the answers. Times are unix ms, inclusive."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from relay.api.deliveries import DeliveryAttempt
from relay.api.schemas import PageQuery
from relay.store.dead_letters import KINDS
from relay.webhooks.json_types import Int64, JsonInt64
from relay.webhooks.model import WebhookOut

Kind = Literal[KINDS]  # type: ignore[valid-type]
Ms = Annotated[Int64, Field(ge=0)]
"""A time, unix ms."""
JsonMs = Annotated[JsonInt64, Field(ge=0)]
"""A time in a request body, unix ms: an integer, never a string."""
_SINCE = "Only those from this time on (unix ms, inclusive)."
_UNTIL = "Only those up to this time (unix ms, inclusive)."
_KIND = "Only letters of this kind."


def ordered(until: int | None, info: ValidationInfo) -> int | None:
    since = info.data.get("since")
    if until is not None and since is not None and since > until:
        raise ValueError("must not be earlier than since")
    return until


class DeadLettersQuery(PageQuery):
    webhookId: Int64 | None = Field(None, description="Only this webhook's letters.")
    kind: Kind | None = Field(None, description=_KIND)
    since: Ms | None = Field(None, description="Only letters written from this time on (unix ms).")
    until: Ms | None = Field(None, description="Only letters written up to this time (unix ms).")

    _until_after_since = field_validator("until")(ordered)


class ReplayBody(BaseModel):
    """Either ``ids``, or a filter (any of ``webhookId``, ``kind``, ``since``, ``until``), or
    ``{"all": true}``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    ids: list[str] | None = Field(None, max_length=10_000, description="The letters to replay.")
    webhookId: JsonInt64 | None = Field(None, description="Every letter of this webhook.")
    kind: Kind | None = Field(None, description=_KIND)
    since: JsonMs | None = Field(None, description="Letters written from this time on (unix ms).")
    until: JsonMs | None = Field(None, description="Letters written up to this time (unix ms).")
    all: bool | None = Field(None, description="true: replay every letter (it must be asked for).")

    _until_after_since = field_validator("until")(ordered)

    def filtered(self) -> bool:
        return any(v is not None for v in (self.webhookId, self.kind, self.since, self.until))


class RecoverBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    since: JsonMs = Field(description="Replay the webhook's letters written from this time on.")
    until: JsonMs | None = Field(None, description="... up to this time (unix ms); unset: now.")

    _until_after_since = field_validator("until")(ordered)


class BackfillBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    since: JsonMs = Field(description="Deliver the retained events received from this time on.")


class DeadLetterOut(BaseModel):
    id: str = Field(description="The letter's id.")
    webhookId: int | None = Field(json_schema_extra={"format": "int64"})
    kind: Kind
    reason: str
    attempts: int = Field(description="Attempts made.", json_schema_extra={"format": "int32"})
    lastStatus: int | None = Field(json_schema_extra={"format": "int32"})
    lastError: str | None
    at: Int64 = Field(description="When the letter was written, unix ms.")


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    limit: int = Field(json_schema_extra={"format": "int32"})
    offset: int = Field(json_schema_extra={"format": "int32"})
    totalCount: int = Field(json_schema_extra={"format": "int32"})


class DeadLetterDetail(DeadLetterOut):
    history: list[DeliveryAttempt] = Field(description="Each attempt made, newest first.")
    eventId: str | None = None
    deliveryId: str | None = Field(None, description="The webhook-id header of its delivery.")
    resourceType: str | None = None
    eventType: str | None = None
    receivedAt: int | None = Field(None, json_schema_extra={"format": "int64"})
    event: dict[str, Any] | None = Field(None, description="The event, as CallFire sent it.")
    raw: str | None = Field(None, description="A poison entry's fields, as JSON.")
    webhook: WebhookOut | None = Field(None, description="Its webhook; null once deleted.")


class Skipped(BaseModel):
    id: str
    reason: str


class ReplayResult(BaseModel):
    replayed: int = Field(json_schema_extra={"format": "int32"})
    skipped: list[Skipped]


class RecoverResult(BaseModel):
    replayed: int = Field(json_schema_extra={"format": "int32"})


class BackfillResult(BaseModel):
    queued: int = Field(json_schema_extra={"format": "int32"})
