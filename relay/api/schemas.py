"""The API's query parameters and response bodies, as models: what handlers parse and return, and
what ``/openapi.json`` describes. Request bodies are ``relay.webhooks.model.WebhookBody``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relay import selector
from relay.webhooks.json_types import Int64
from relay.webhooks.model import WebhookOut

MAX_LIMIT = 1000
"""A larger ``limit`` is served as this many (the page says so in its ``limit``)."""
Int32 = Annotated[int, Field(ge=0, le=2**31 - 1, json_schema_extra={"format": "int32"})]


class FieldsQuery(BaseModel):
    """The partial-response parameter every GET takes."""

    model_config = ConfigDict(extra="ignore")

    fields: str | None = Field(
        None,
        description="Limit fields received in response, e.g. `id,name` or `items(id,name)`.",
        json_schema_extra={"pattern": selector.PATTERN},
    )

    @field_validator("fields")
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        if value is not None:
            selector.parse(value)
        return value


class PageQuery(FieldsQuery):
    offset: Int32 = Field(0, description="Offset to the start of the page.")
    limit: Int32 = Field(100, description=f"Most items returned; at most {MAX_LIMIT} are.")

    @property
    def page_limit(self) -> int:
        return min(self.limit, MAX_LIMIT)


class FindWebhooksQuery(FieldsQuery):
    name: str | None = Field(None, description="A name of a webhook (exact).")
    resource: str | None = Field(None, description="A resource name, e.g. OutboundCall (exact).")
    event: str | None = Field(None, description="An event name, matched case-insensitively.")
    callback: str | None = Field(None, description="A callback URL (exact).")
    enabled: bool | None = Field(None, description="Whether the webhook is enabled.")
    offset: Int32 = Field(0, description="Offset to the start of the page.")
    limit: Int32 = Field(100, description=f"Most items returned; at most {MAX_LIMIT} are.")

    @field_validator("enabled", mode="before")
    @classmethod
    def _true_or_false(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise ValueError("must be true or false")
            return value.lower() == "true"
        return value


class ErrorResponse(BaseModel):
    """CallFire's error body."""

    httpStatusCode: int = Field(json_schema_extra={"format": "int32"})
    internalCode: str
    message: str
    developerMessage: str
    helpLink: str


class ResourceId(BaseModel):
    id: Int64


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    limit: int = Field(json_schema_extra={"format": "int32"})
    offset: int = Field(json_schema_extra={"format": "int32"})
    totalCount: int = Field(json_schema_extra={"format": "int32"})


class WebhookResource(BaseModel):
    resource: str
    supportedEvents: list[str] = Field(json_schema_extra={"uniqueItems": True})


class ItemListWebhookResource(BaseModel):
    items: list[WebhookResource]
