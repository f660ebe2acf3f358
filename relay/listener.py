"""``POST /callbacks/callfire``: verify, parse, dedup and make durable; 2xx only once durable."""

from __future__ import annotations

import asyncio
import time

import orjson
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from relay import metrics
from relay.callback import CallbackError, parse_callback
from relay.errors import ApiError, error_middleware
from relay.http_server import DIRECT_POSTS
from relay.ratelimit import FailureLimiter, client_key, retry_after_header
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER, matching_secret
from relay.store.ingest import IngestWriter

log = structlog.get_logger("relay.listener")

CALLBACK_PATH = "/callbacks/callfire"
RETRY_AFTER_SECONDS = "5"
_ACCEPTED = metrics.CALLBACKS.labels("accepted")  # bound once: every callback counts one of these
_DUPLICATE = metrics.CALLBACKS.labels("duplicate")


class Listener:
    """The ingest edge: everything it needs, built once per process."""

    def __init__(self, settings: Settings, writer: IngestWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.all_secrets = settings.callfire_secrets.all()
        self.log = log.bind()  # bound once: the logging configured when the process started
        self.limiter: FailureLimiter | None = None
        if settings.auth_failure_limit:
            self.limiter = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window)

    def _refuse(self, outcome: str, status: int, message: str, **headers: str) -> ApiError:
        metrics.CALLBACKS.labels(outcome).inc()
        self.log.info("callback refused", outcome=outcome, status=status, reason=message)
        return ApiError(status, message, headers=headers or None)

    def _check_limit(self, request: web.Request) -> None:
        """429 before any work for an address past its signature-failure limit (not logged)."""
        if not self.limiter:  # none configured, or no address has failed lately
            return
        wait = self.limiter.retry_after(client_key(request.remote), time.monotonic())
        if wait is not None:
            metrics.CALLBACKS.labels("rate_limited").inc()
            message = "too many failed signatures from this address; retry later"
            raise ApiError(429, message, headers={"Retry-After": retry_after_header(wait)})

    def _unauthorized(self, request: web.Request, message: str) -> ApiError:
        metrics.SIGNATURE_FAILURES.inc()
        if self.limiter is not None:
            client = client_key(request.remote)
            if self.limiter.failed(client, time.monotonic()):
                self.log.warning("client rate limited after failed signatures", client=client)
        return self._refuse("unauthorized", 401, message)

    async def _read(self, request: web.Request) -> bytes:
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise self._refuse("invalid", 415, "Content-Encoding is not supported; send identity")
        length = request.content_length
        if length is not None and length > self.settings.max_body_bytes:
            raise self._refuse("too_large", 413, "the request body is too large")
        try:
            if request.content.is_eof():  # the body came whole with the headers: nothing to wait for
                return await request.read()
            async with asyncio.timeout(self.settings.read_timeout):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise self._refuse("too_large", 413, "the request body is too large") from None
        except TimeoutError:
            raise self._refuse("invalid", 408, "the request body did not arrive in time") from None
        except (ConnectionError, web.RequestPayloadError):
            raise self._refuse("invalid", 400, "the request body was cut short") from None

    def _verify(self, request: web.Request, body: bytes) -> bytes | None:
        """The matching secret; None when unsigned callbacks are allowed and none came signed."""
        header = request.headers.get(CALLFIRE_HEADER)
        if header is None and self.settings.allow_unsigned:
            return None
        secret = matching_secret(header, body, self.all_secrets)
        if secret is None:
            raise self._unauthorized(request, f"missing or wrong {CALLFIRE_HEADER}")
        return secret

    async def receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        self._check_limit(request)
        body = await self._read(request)
        secret = self._verify(request, body)
        try:
            callback = parse_callback(body, self.settings.max_events_per_callback)
        except CallbackError as exc:
            outcome = "too_large" if exc.status == 413 else "invalid"
            raise self._refuse(outcome, exc.status, str(exc)) from None
        if secret is not None and secret not in self.settings.callfire_secrets.allowed_for(
            callback.webhook_id
        ):
            message = f"{CALLFIRE_HEADER} is not valid for this webhookId"
            raise self._unauthorized(request, message)
        now_ms = int(time.time() * 1000)
        max_age = self.settings.max_callback_age
        if (
            max_age is not None
            and callback.timestamp is not None
            and callback.timestamp < now_ms - max_age * 1000
        ):
            raise self._refuse("stale", 400, "timestamp: the callback is older than RELAY_MAX_CALLBACK_AGE")
        events = callback.events
        try:
            fresh = await self.writer.write(callback, now_ms)
        except (RedisError, ConnectionError, OSError, TimeoutError) as exc:
            self.log.warning(
                "callback not durable",
                callback=callback.digest.hex()[:16],
                error=type(exc).__name__,
            )
            raise self._refuse(
                "unavailable",
                503,
                "the relay cannot store the callback now; retry later",
                **{"Retry-After": RETRY_AFTER_SECONDS},
            ) from None
        metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)
        if fresh:
            outcome = "accepted"
            _ACCEPTED.inc()
            metrics.EVENTS_ENQUEUED.inc(len(events))
        else:
            outcome = "duplicate"
            _DUPLICATE.inc()
            metrics.DUPLICATES.inc()
        self.log.info(
            "callback " + outcome,
            callback=callback.digest.hex()[:16],
            cf_webhook_id=callback.webhook_id,
            events=len(events),
            resource=events[0].resource_type,
            event_type=events[0].event_type,
        )
        body_out = {"status": outcome, "events": len(events) if fresh else 0}
        return web.Response(body=orjson.dumps(body_out), content_type="application/json")


def setup_listener(app: web.Application, listener: Listener) -> None:
    app.router.add_post(CALLBACK_PATH, listener.receive)

    async def receive_direct(request: web.Request) -> web.StreamResponse:
        return await error_middleware(request, listener.receive)  # the errors it would answer

    app.setdefault(DIRECT_POSTS, {})[CALLBACK_PATH] = receive_direct
