"""CallFire's error body, and the middleware that gives every error that shape.

Handlers raise ``ApiError``; aiohttp's own HTTP errors (404, 405, 413) and anything unexpected are
translated here, at the edge, so no caller ever sees a traceback or an HTML page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

log = structlog.get_logger("relay.http")

HELP_LINK = "https://developers.callfire.com/docs.html"


class ApiError(Exception):
    """An HTTP error with CallFire's body. ``headers`` go on the response (e.g. Retry-After)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        internal_code: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.internal_code = internal_code
        self.headers = headers or {}


def error_body(status: int, message: str, internal_code: int = 0) -> dict[str, Any]:
    return {
        "httpStatusCode": status,
        "internalCode": str(internal_code),
        "message": message,
        "developerMessage": message,
        "helpLink": HELP_LINK,
    }


def error_response(
    status: int, message: str, *, internal_code: int = 0, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(error_body(status, message, internal_code)),
        content_type="application/json",
        headers=headers,
    )


_REASONS = {
    404: "no such resource",
    405: "method not allowed",
    413: "the request body is too large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, internal_code=exc.internal_code, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate", "retry-after")
        }
        return error_response(exc.status, _REASONS.get(exc.status, exc.reason), headers=headers)
    except Exception as exc:
        log.error("unhandled error", path=request.path, method=request.method, exc_info=exc)
        return error_response(500, "internal error")
