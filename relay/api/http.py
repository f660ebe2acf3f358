"""Reading requests and writing responses at the API's edge: pydantic errors become CallFire's
400s naming the field, and every JSON answer honours ``fields``."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from relay import selector
from relay.errors import ApiError

M = TypeVar("M", bound=BaseModel)
_INTEGER = re.compile(r"-?[0-9]+")


def describe(exc: ValidationError, where: str) -> str:
    """``"callback: must be an absolute http:// or https:// URL; events: ..."``; a filter's fault
    as ``filter.resource.finalCallResult.$in: must be a non-empty list``."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in err["loc"]) or where
        inner = err.get("ctx", {}).get("at")  # the part of a field at fault (a filter's)
        if inner:
            name = f"{name}.{inner}"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "json_invalid":
            message = "is not valid JSON"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = "must be a JSON object"
        parts.append(f"{name}: {message}")
    return "; ".join(parts)


def bad_request(exc: ValidationError, where: str) -> ApiError:
    return ApiError(400, describe(exc, where))


def query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``; 400 naming the parameter when it does not fit."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise bad_request(exc, "query") from None


async def body(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model`` (an empty body is ``{}``); 400 naming the field otherwise."""
    raw = await request.read()
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        raise bad_request(exc, "body") from None


def int_param(request: web.Request, name: str) -> int:
    """A path parameter that must be an int64."""
    text = request.match_info[name]
    if not _INTEGER.fullmatch(text):
        raise ApiError(400, f"{name}: must be an integer")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ApiError(400, f"{name}: out of range for int64")
    return value


def json_response(data: Any, *, fields: str | None = None, status: int = 200) -> web.Response:
    """``data`` as JSON, trimmed to the ``fields`` selector when one is given."""
    if fields is not None:
        data = selector.apply(selector.parse(fields), data)
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")
