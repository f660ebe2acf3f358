"""Counting a request's failed credential (a callback's signature, the API's password) against
its client's limit: the edge of the pure ``limiter``, shared by the listener and the API."""

from __future__ import annotations

import time

import structlog
from aiohttp import web

from relay.errors import ApiError
from relay.ingest.clients import FORWARDED_FOR, TrustedProxies
from relay.ingest.limiter import FailureLimiter, client_key, retry_after_header

log = structlog.get_logger("relay.limits")


def client_of(request: web.BaseRequest, proxies: TrustedProxies) -> str:
    """The key a request's failures are counted under: its client's address (``clients``)."""
    return client_key(proxies.client(request.remote, request.headers.getall(FORWARDED_FOR, ())))


def over_limit(
    limiter: FailureLimiter | None, request: web.BaseRequest, proxies: TrustedProxies, *, what: str
) -> ApiError | None:
    """One failed ``what`` (``signatures``, ``credentials``) from the request's client: the 429 to
    answer when that client is held back already; None once the failure is counted (answer
    401). The failure that blocks a client is logged, once; the 429s are not."""
    if limiter is None:
        return None
    client = client_of(request, proxies)
    wait, blocks = limiter.refusal(client, time.monotonic())
    if wait is not None:
        message = f"too many failed {what} from this address; retry later"
        return ApiError(429, message, headers={"Retry-After": retry_after_header(wait)})
    if blocks:
        log.warning(f"client rate limited after failed {what}", client=client)
    return None
