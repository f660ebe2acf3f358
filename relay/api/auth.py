"""HTTP Basic on every path under ``/v2``, against ``RELAY_API_CREDENTIALS``, as CallFire does;
and the API's answer when Redis cannot be reached."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from redis.exceptions import RedisError

from relay.errors import ApiError, Handler
from relay.secrets import ApiCredentials

log = structlog.get_logger("relay.api")

PROTECTED = "/v2"
CHALLENGE = {"WWW-Authenticate": 'Basic realm="relay", charset="UTF-8"'}
RETRY = {"Retry-After": "5"}


def protected(path: str) -> bool:
    return path == PROTECTED or path.startswith(PROTECTED + "/")


def basic_auth_middleware(credentials: ApiCredentials) -> Middleware:
    """401 with a challenge unless a configured pair is given; 403 when none is configured."""

    @web.middleware
    async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not protected(request.path):
            return await handler(request)
        if not credentials:
            raise ApiError(
                403,
                "the Webhooks API is disabled: set RELAY_API_CREDENTIALS to user:password pairs",
            )
        if not credentials.check_header(request.headers.get("Authorization")):
            log.info("api call refused", reason="credentials", method=request.method, path=request.path)
            raise ApiError(401, "missing or wrong credentials (HTTP Basic)", headers=CHALLENGE)
        return await handler(request)

    return basic_auth


@web.middleware
async def store_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Redis unreachable or too slow: 503 with Retry-After, not a 500 (inside the auth check)."""
    if not protected(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except (RedisError, ConnectionError, TimeoutError) as exc:
        log.warning(
            "api call failed: redis", method=request.method, path=request.path, error=type(exc).__name__
        )
        raise ApiError(503, "the webhook store cannot be reached now; retry later", headers=RETRY) from None
