"""``POST /callbacks/callfire``: verify, parse, dedup and make durable; 2xx only once durable.

The one way in: an aiohttp route, behind the app's error middleware, like any other route. What
HTTP itself requires (limits, timeouts, pipelining, ``Connection: close``, malformed bytes) is
aiohttp's job (``relay.http_server``); what a callback requires is here, in this order: the
encoding and the size, the body within ``RELAY_READ_TIMEOUT``, the signature (a failure counted
per client, ``limiter``), the body (``parsing``), the age, then the durable write (``writer``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web
from opentelemetry.trace import Span
from redis.exceptions import RedisError

from relay import metrics
from relay.errors import ApiError
from relay.ingest.failures import over_limit
from relay.ingest.limiter import failure_limiter
from relay.ingest.parsing import Callback, CallbackError, parse_callback
from relay.ingest.signature import BAD_SIGNATURE, WRONG_WEBHOOK, SignatureCheck
from relay.ingest.writer import IngestWriter
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER
from relay.tracing import Tracing, end, traceparent

log = structlog.get_logger("relay.listener")

CALLBACK_PATH = "/callbacks/callfire"
RETRY_AFTER_SECONDS = "5"
_ACCEPTED = metrics.CALLBACKS.labels("accepted")  # bound once: every callback counts one of these
_DUPLICATE = metrics.CALLBACKS.labels("duplicate")
_DUPLICATE_BODY = orjson.dumps({"status": "duplicate", "events": 0})
_UNAVAILABLE = (RedisError, ConnectionError, OSError, TimeoutError)
T = TypeVar("T")


def _failure(done: asyncio.Future[int]) -> str | None:
    """What a finished write came to, for its span: None when it was written."""
    if done.cancelled():
        return "cancelled"
    exc = done.exception()
    return None if exc is None else str(exc) or type(exc).__name__


@functools.cache  # as many as RELAY_MAX_EVENTS_PER_CALLBACK at most
def _accepted_body(events: int) -> bytes:
    return orjson.dumps({"status": "accepted", "events": events})


class Listener:
    """The ingest edge: everything it needs, built once per process; ``receive`` is the route."""

    def __init__(self, settings: Settings, writer: IngestWriter, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.writer = writer
        self.tracing = tracing or Tracing()
        self.signatures = SignatureCheck(settings.callfire_secrets, allow_unsigned=settings.allow_unsigned)
        self.log = log.bind()  # bound once: the logging configured when the process started
        self.limiter = failure_limiter(settings.auth_failure_limit, settings.auth_failure_window)

    def _refuse(self, outcome: str, status: int, message: str, **headers: str) -> ApiError:
        metrics.CALLBACKS.labels(outcome).inc()
        self.log.info("callback refused", outcome=outcome, status=status, reason=message)
        return ApiError(status, message, headers=headers or None)

    def _unauthorized(self, request: web.Request, message: str) -> ApiError:
        """401 for a failed signature; 429 (not logged) once its client is past the limit."""
        metrics.SIGNATURE_FAILURES.inc()
        refusal = over_limit(self.limiter, request, self.settings.trusted_proxies, what="signatures")
        if refusal is not None:
            metrics.CALLBACKS.labels("rate_limited").inc()
            return refusal
        return self._refuse("unauthorized", 401, message)

    async def _read(self, request: web.Request) -> bytes:
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise self._refuse("invalid", 415, "Content-Encoding is not supported; send identity")
        try:
            length = request.content_length
        except ValueError:  # digits llhttp accepts, too many for int() (past 4300)
            raise self._refuse("invalid", 400, "Content-Length is not a number this server reads") from None
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

    def _checked(self, request: web.Request, body: bytes) -> Callback:
        """The callback in ``body``, signed, well-formed and fresh; else the refusal, raised."""
        secret = self.signatures.signer(request.headers.get(CALLFIRE_HEADER), body)
        if secret is None:
            raise self._unauthorized(request, BAD_SIGNATURE)
        try:
            callback = parse_callback(body, self.settings.max_events_per_callback)
        except CallbackError as exc:
            outcome = "too_large" if exc.status == 413 else "invalid"
            raise self._refuse(outcome, exc.status, str(exc)) from None
        if not self.signatures.may_sign(secret, callback.webhook_id):
            raise self._unauthorized(request, WRONG_WEBHOOK)
        max_age = self.settings.max_callback_age
        if (
            max_age is not None
            and callback.timestamp is not None
            and callback.timestamp < int(time.time() * 1000) - max_age * 1000
        ):
            raise self._refuse("stale", 400, "timestamp: the callback is older than RELAY_MAX_CALLBACK_AGE")
        return callback

    async def receive(self, request: web.Request) -> web.Response:
        """The route: 200 once the callback is durable (or a repeat); a refusal otherwise. With
        tracing on, the whole of it is the trace's root span (``relay.tracing``), with a
        ``verify`` and a ``write`` step; off, ``span`` stays None and nothing else is done."""
        span = self.tracing.ingest() if self.tracing.on else None
        try:
            body = await self._read(request)
            started = time.perf_counter()
            if span is None:
                callback = self._checked(request, body)
                future = self.writer.submit(callback, int(time.time() * 1000))
            else:
                callback = self._step(span, "verify", self._checked, request, body)
                future = self._step(span, "write", self._traced_write, callback, span)
            try:
                appended = await future
            except _UNAVAILABLE as exc:
                self.log.warning(
                    "callback not durable", callback=callback.digest.hex()[:16], error=type(exc).__name__
                )
                raise self._refuse(
                    "unavailable",
                    503,
                    "the relay cannot store the callback now; retry later",
                    **{"Retry-After": RETRY_AFTER_SECONDS},
                ) from None
            metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)
            response = web.Response(body=self._accepted(callback, appended), content_type="application/json")
        except BaseException as exc:
            if span is not None:
                status = exc.status if isinstance(exc, ApiError) else None
                end(span, error=str(exc) or type(exc).__name__, http__response__status_code=status)
            raise
        if span is not None:
            end(
                span,
                http__response__status_code=200,
                relay__callback__digest=callback.digest.hex(),
                relay__events=len(callback.events),
                relay__outcome="accepted" if appended > 0 else "duplicate",
            )
        return response

    def _step(self, parent: Span, name: str, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a span ``name`` under ``parent``; the span ends when the work (or the
        future it gives) is done."""
        span = self.tracing.step(parent, name)
        try:
            result = work(*args)
        except BaseException as exc:
            end(span, error=str(exc) or type(exc).__name__)
            raise
        if isinstance(result, asyncio.Future):
            result.add_done_callback(lambda done: end(span, error=_failure(done)))
        else:
            end(span)
        return result

    def _traced_write(self, callback: Callback, span: Span) -> asyncio.Future[int]:
        return self.writer.submit(callback, int(time.time() * 1000), traceparent(span))

    def _accepted(self, callback: Callback, appended: int) -> bytes:
        """The 200's body, counted and logged: accepted, or a duplicate inside the window."""
        events = callback.events
        if appended > 0:
            outcome = "accepted"
            _ACCEPTED.inc()
            metrics.EVENTS_ENQUEUED.inc(len(events))
            body = _accepted_body(len(events))
        else:
            outcome = "duplicate"
            _DUPLICATE.inc()
            metrics.DUPLICATES.inc()
            body = _DUPLICATE_BODY
        self.log.info(
            "callback " + outcome,
            callback=callback.digest.hex()[:16],
            cf_webhook_id=callback.webhook_id,
            events=len(events),
            resource=events[0].resource_type,
            event_type=events[0].event_type,
        )
        return body


def setup_listener(app: web.Application, listener: Listener) -> None:
    app.router.add_post(CALLBACK_PATH, listener.receive)
