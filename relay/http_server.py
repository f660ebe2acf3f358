"""The HTTP server a relay process runs: aiohttp's runner with the relay's limits.

What each limit refuses, and the test that proves it, is in docs/security.md. In short:

- The request line and each header are at most ``MAX_LINE_SIZE``/``MAX_FIELD_SIZE`` bytes, and
  a request carries at most ``MAX_HEADERS`` headers: more is a 400 from aiohttp's parser.
- The request head must arrive within ``keepalive_timeout`` of the connection opening (or of the
  previous response on it): aiohttp's keep-alive timer closes a connection whose handler still
  waits for a complete head, so headers trickled byte by byte are cut off like an idle
  connection. The body is bounded by ``read_timeout`` in the handler that reads it.
- Any ``/v2`` body must arrive within ``read_timeout`` too (``read_body_within``, 408, run by
  the API's middleware after authentication); the listener, which refuses some requests before
  reading at all, keeps its own deadline. No other route takes a body.
- No request body is ever decompressed (``auto_decompress=False``): the listener refuses any
  ``Content-Encoding`` with 415 before reading; anywhere else the bytes arrive as sent.
- A body left unread after the answer (413, 415, 429, ...) is read and thrown away for at most
  ``LINGER_SECONDS``, then the connection closes.
- Every request, callbacks included, is parsed and answered by aiohttp (its HTTP parser, its
  pipelining and flow control, ``Connection: close``); the relay adds routes, never a protocol.
- Malformed HTTP is the client's doing: aiohttp refuses it (400) and closes the connection; the
  answer is CallFire's error body with a fixed message (``_Handler``: aiohttp's own text quotes
  the offending bytes, which may hold a signature or a credential); it is counted, and logged at
  debug level as one line naming the error's class, never at error level, so a client cannot
  flood the logs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from relay import metrics
from relay.errors import ApiError, error_response
from relay.settings import Settings

MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 64
LINGER_SECONDS = 2.0

log = structlog.get_logger("relay.http")


class ServerLog:
    """The ``logger`` aiohttp's request handler logs through: its own errors pass through to
    ``aiohttp.server``; a client's malformed request becomes one quiet line and a metric."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("aiohttp.server")

    def _client_fault(self, kwargs: dict[str, Any]) -> bool:
        exc = kwargs.get("exc_info")
        if not isinstance(exc, HttpProcessingError):
            return False
        metrics.HTTP_MALFORMED.inc()
        log.debug("malformed http request refused", error=type(exc).__name__, status=exc.code)
        return True

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if not self._client_fault(kwargs):
            self._logger.debug(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if not self._client_fault(kwargs):
            self._logger.exception(msg, *args, **kwargs)


async def read_body_within(request: web.BaseRequest, seconds: float) -> None:
    """A body still arriving is read within ``seconds`` (else 408), so no handler waits on a
    trickling client; aiohttp keeps it, and the handler's own read returns it at once."""
    if not request.body_exists or request.content.is_eof():
        return
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        raise ApiError(408, "the request body did not arrive in time") from None
    except (ConnectionError, web.RequestPayloadError):
        raise ApiError(400, "the request body was cut short") from None


def server_options(settings: Settings) -> dict[str, Any]:
    """Every option the relay gives aiohttp's server (``AppRunner`` keyword arguments)."""
    return {
        "keepalive_timeout": settings.keepalive_timeout,
        "max_line_size": MAX_LINE_SIZE,
        "max_field_size": MAX_FIELD_SIZE,
        "max_headers": MAX_HEADERS,
        "auto_decompress": False,
        "lingering_time": LINGER_SECONDS,
        "logger": ServerLog(),
    }


class _Handler(web.RequestHandler):
    """aiohttp's connection handler; only the answer to a request it could not parse differs:
    CallFire's error body with a fixed message, not aiohttp's text, which quotes the offending
    bytes (a signature or a credential may be among them)."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if already answering
        text = "malformed HTTP request" if 400 <= status < 500 else "internal error"
        response = error_response(status, text)
        response.force_close()
        return response


class _Server(web.Server):
    """aiohttp's low-level server (a protocol factory) whose connections are ``_Handler``s."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(_not_started, **options)
        self.loop = asyncio.get_running_loop()
        self.options = options

    def __call__(self) -> web.RequestHandler:
        return _Handler(self, loop=self.loop, **self.options)


async def _not_started(_: web.BaseRequest) -> web.StreamResponse:  # pragma: no cover - replaced
    raise RuntimeError("the runner was not set up")


class Runner(web.ServerRunner):
    """The application served on ``_Server``, through aiohttp's public API only: ``setup`` sets up
    an ``AppRunner`` (the application's start-up) and serves what its server would serve (its
    ``request_handler`` and ``request_factory``, public attributes) on ``_Server``; ``cleanup``
    runs the application's ``on_shutdown`` (as ``AppRunner`` does, before the drain: e.g. the
    console's live tails end), drains the connections (within RELAY_SHUTDOWN_GRACE), then runs
    the application's cleanup."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        options = server_options(settings)
        self.application = web.AppRunner(app, handle_signals=False, access_log=None, **options)
        super().__init__(
            _Server({"access_log": None, **options}),
            handle_signals=False,
            shutdown_timeout=settings.shutdown_grace,
        )

    async def setup(self) -> None:
        await self.application.setup()
        app_server = self.application.server
        assert app_server is not None  # set by setup()
        await super().setup()
        server = self.server
        assert server is not None
        server.request_handler = app_server.request_handler
        server.request_factory = app_server.request_factory

    async def shutdown(self) -> None:
        """Called by ``cleanup`` between closing idle connections and draining the others."""
        await self.application.app.shutdown()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self.application.app.cleanup()


def make_runner(app: web.Application, settings: Settings) -> Runner:
    """The runner ``relay serve``/``run``/``work`` start, and the tests start on loopback."""
    return Runner(app, settings)
