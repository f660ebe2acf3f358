"""HTTP Basic on every path under ``/v2`` and ``/console``, against ``RELAY_API_CREDENTIALS``, as
CallFire does; wrong credentials limited per client address as signatures are
(``relay.ingest.limiter``); the body's deadline; and the API's answer when Redis cannot be reached."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from redis.exceptions import RedisError

from relay.api import swagger
from relay.errors import ApiError, Handler
from relay.http_server import read_body_within
from relay.ingest.failures import over_limit
from relay.ingest.limiter import failure_limiter
from relay.settings import Settings

log = structlog.get_logger("relay.api")

PROTECTED = ("/v2", "/console")
"""The API, and the console (its pages for people), behind the same credentials."""
CHALLENGE = {"WWW-Authenticate": 'Basic realm="relay", charset="UTF-8"'}
RETRY = {"Retry-After": "5"}


def protected(path: str) -> bool:
    """Under ``/v2`` or ``/console``, but for CallFire's Swagger description, public as CallFire's is."""
    under = any(path == prefix or path.startswith(prefix + "/") for prefix in PROTECTED)
    return under and path != swagger.PATH


def api_middleware(settings: Settings) -> Middleware:
    """Everything under ``/v2`` and ``/console``, in order: HTTP Basic (401 with a challenge
    unless a configured pair is given; 403 when none is configured; 429 with Retry-After for
    wrong credentials from a client past RELAY_AUTH_FAILURE_LIMIT, while right ones still pass;
    no ``Authorization`` at all is no failure, so a browser gets its login prompt), then the body read within
    RELAY_READ_TIMEOUT, then the handler, a Redis failure becoming 503 with Retry-After. One
    layer, which any other path (the callbacks above all) passes straight through."""
    credentials = settings.api_credentials
    read_timeout = settings.read_timeout
    limiter = failure_limiter(settings.auth_failure_limit, settings.auth_failure_window)

    @web.middleware
    async def api(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not protected(request.path):
            return await handler(request)
        if not credentials:
            raise ApiError(
                403,
                "the Webhooks API is disabled: set RELAY_API_CREDENTIALS to user:password pairs",
            )
        authorization = request.headers.get("Authorization")
        if not credentials.check_header(authorization):
            if authorization is not None:  # none at all: a browser's first try, not a failure
                refusal = over_limit(limiter, request, settings.trusted_proxies, what="credentials")
                if refusal is not None:
                    raise refusal
            log.info("api call refused", reason="credentials", method=request.method, path=request.path)
            raise ApiError(401, "missing or wrong credentials (HTTP Basic)", headers=CHALLENGE)
        if request.match_info.http_exception is None:
            await read_body_within(request, read_timeout)
        try:
            return await handler(request)
        except (RedisError, ConnectionError, TimeoutError) as exc:
            log.warning(
                "api call failed: redis", method=request.method, path=request.path, error=type(exc).__name__
            )
            message = "the webhook store cannot be reached now; retry later"
            raise ApiError(503, message, headers=RETRY) from None

    return api
