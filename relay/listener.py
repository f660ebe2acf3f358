"""``POST /callbacks/callfire``: verify, parse, dedup and make durable; 2xx only once durable."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass

import orjson
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from relay import metrics
from relay.callback import Callback, CallbackError, parse_callback
from relay.errors import ApiError, error_middleware
from relay.http_server import DIRECT_POSTS, FAST_POSTS
from relay.ratelimit import FailureLimiter, client_key, retry_after_header
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER, matching_secret
from relay.store.ingest import IngestWriter

log = structlog.get_logger("relay.listener")

CALLBACK_PATH = "/callbacks/callfire"
RETRY_AFTER_SECONDS = "5"
_ACCEPTED = metrics.CALLBACKS.labels("accepted")  # bound once: every callback counts one of these
_DUPLICATE = metrics.CALLBACKS.labels("duplicate")
_DUPLICATE_BODY = orjson.dumps({"status": "duplicate", "events": 0})


@functools.cache  # as many as RELAY_MAX_EVENTS_PER_CALLBACK at most
def _accepted_body(events: int) -> bytes:
    return orjson.dumps({"status": "accepted", "events": events})


class Listener:
    """The ingest edge: everything it needs, built once per process. It serves callbacks on the
    fast path (``relay.front``, as its ``FastRoute``) and those handed to aiohttp (``receive``)."""

    header = CALLFIRE_HEADER.lower().encode()

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

    def _held_back(self, remote: str | None) -> float | None:
        """Seconds an address past its signature-failure limit must wait; None for any other."""
        if not self.limiter:  # none configured, or no address has failed lately
            return None
        return self.limiter.retry_after(client_key(remote), time.monotonic())

    def check_limit(self, remote: str | None) -> None:
        """429 before any work for an address past its signature-failure limit (not logged)."""
        wait = self._held_back(remote)
        if wait is not None:
            metrics.CALLBACKS.labels("rate_limited").inc()
            message = "too many failed signatures from this address; retry later"
            raise ApiError(429, message, headers={"Retry-After": retry_after_header(wait)})

    def admits(self, remote: str | None) -> bool:
        """False for an address the failure limiter holds back (``check_limit`` would refuse)."""
        return self._held_back(remote) is None

    def _unauthorized(self, remote: str | None, message: str) -> ApiError:
        metrics.SIGNATURE_FAILURES.inc()
        if self.limiter is not None:
            client = client_key(remote)
            if self.limiter.failed(client, time.monotonic()):
                self.log.warning("client rate limited after failed signatures", client=client)
        return self._refuse("unauthorized", 401, message)

    def body_timed_out(self) -> ApiError:
        return self._refuse("invalid", 408, "the request body did not arrive in time")

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
            raise self.body_timed_out() from None
        except (ConnectionError, web.RequestPayloadError):
            raise self._refuse("invalid", 400, "the request body was cut short") from None

    def _verify(self, signature: str | None, body: bytes, remote: str | None) -> bytes | None:
        """The matching secret; None when unsigned callbacks are allowed and none came signed."""
        if signature is None and self.settings.allow_unsigned:
            return None
        secret = matching_secret(signature, body, self.all_secrets)
        if secret is None:
            raise self._unauthorized(remote, f"missing or wrong {CALLFIRE_HEADER}")
        return secret

    def accept(self, body: bytes, signature: str | None, remote: str | None) -> Pending:
        """Everything before the durable write, which it starts: the signature, the parse and
        the checks, each refusal an ``ApiError``. ``answer`` gives the reply once it is done."""
        started = time.perf_counter()
        self.check_limit(remote)  # again: pipelined requests are read before earlier ones fail
        secret = self._verify(signature, body, remote)
        try:
            callback = parse_callback(body, self.settings.max_events_per_callback)
        except CallbackError as exc:
            outcome = "too_large" if exc.status == 413 else "invalid"
            raise self._refuse(outcome, exc.status, str(exc)) from None
        if secret is not None and secret not in self.settings.callfire_secrets.allowed_for(
            callback.webhook_id
        ):
            raise self._unauthorized(remote, f"{CALLFIRE_HEADER} is not valid for this webhookId")
        now_ms = int(time.time() * 1000)
        max_age = self.settings.max_callback_age
        if (
            max_age is not None
            and callback.timestamp is not None
            and callback.timestamp < now_ms - max_age * 1000
        ):
            raise self._refuse("stale", 400, "timestamp: the callback is older than RELAY_MAX_CALLBACK_AGE")
        return Pending(self, callback, self.writer.submit(callback, now_ms), started)

    def answer(self, pending: Pending) -> bytes:
        """The 200 body once the write is done; 503 (an ``ApiError``) when it failed."""
        callback = pending.callback
        error = pending.future.exception()
        if error is not None:
            if not isinstance(error, (RedisError, ConnectionError, OSError, TimeoutError)):
                raise error
            self.log.warning(
                "callback not durable", callback=callback.digest.hex()[:16], error=type(error).__name__
            )
            raise self._refuse(
                "unavailable",
                503,
                "the relay cannot store the callback now; retry later",
                **{"Retry-After": RETRY_AFTER_SECONDS},
            )
        metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - pending.started)
        events = callback.events
        if pending.future.result() > 0:
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

    async def receive(self, request: web.Request) -> web.Response:
        """The aiohttp handler: callbacks the fast path hands over (chunked, Expect, HTTP/1.0, ...)."""
        self.check_limit(request.remote)
        body = await self._read(request)
        pending = self.accept(body, request.headers.get(CALLFIRE_HEADER), request.remote)
        with contextlib.suppress(Exception):  # answer() reads the outcome from the future
            await pending.future
        return web.Response(body=self.answer(pending), content_type="application/json")


@dataclass(slots=True)
class Pending:
    """A callback whose durable write is under way (``front.Work``)."""

    listener: Listener
    callback: Callback
    future: asyncio.Future[int]
    started: float

    def reply(self) -> tuple[int, bytes]:
        return 200, self.listener.answer(self)


def setup_listener(app: web.Application, listener: Listener) -> None:
    app.router.add_post(CALLBACK_PATH, listener.receive)

    async def receive_direct(request: web.Request) -> web.StreamResponse:
        return await error_middleware(request, listener.receive)  # the errors it would answer

    app.setdefault(DIRECT_POSTS, {})[CALLBACK_PATH] = receive_direct
    app.setdefault(FAST_POSTS, {})[CALLBACK_PATH] = listener
