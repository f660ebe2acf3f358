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
- ``FAST_POSTS`` routes (the callbacks) are read and answered by ``relay.front`` on httptools
  in the common case; it keeps the limits and timeouts above, and hands anything outside that
  case (malformed bytes included) to the aiohttp handler below, so the rest of this list holds.
- Malformed HTTP is the client's doing: it gets CallFire's error body with a fixed message (not
  aiohttp's plain text, which quotes the offending bytes: they may hold a signature or a
  credential); it is counted, and logged at debug level as one line naming the error's class,
  never at error level, so a client cannot flood the logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from relay import metrics
from relay.errors import ApiError, Handler, error_response
from relay.front import FastRoute, Front
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


class _Handler(RequestHandler):
    """aiohttp's connection handler; only the answer to a request it could not parse differs."""

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
    front: Front | None = None

    def handler(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)

    def __call__(self) -> asyncio.Protocol:  # type: ignore[override]
        return self.front() if self.front is not None else self.handler()

    def pre_shutdown(self) -> None:
        super().pre_shutdown()
        if self.front is not None:
            self.front.close_idle()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (aiohttp's)
        """Both kinds of connection wind down together, within one ``timeout``. (The fast path
        hands no connection to aiohttp once shutting down: it closes it after its answers.)"""
        if self.front is None:
            await super().shutdown(timeout)
        else:
            await asyncio.gather(self.front.shutdown(timeout), super().shutdown(timeout))


DIRECT_POSTS: web.AppKey[dict[str, Handler]] = web.AppKey("direct_posts")
"""POST routes answered before the router and the middlewares: the callbacks, the hot path. Such a
handler answers its own errors; any other method on its path goes the usual way (405)."""


_ServerHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def _direct(routes: dict[str, Handler], usual: _ServerHandler) -> _ServerHandler:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "POST" and "Expect" not in request.headers:
            route = routes.get(request.path)
            if route is not None:  # the application's request factory makes web.Request
                return await route(cast(web.Request, request))
        return await usual(request)

    return handle


FAST_POSTS: web.AppKey[dict[str, FastRoute]] = web.AppKey("fast_posts")
"""POST routes served by ``front`` (httptools) in the common case; each also needs its
``DIRECT_POSTS`` handler, which answers the requests the fast path hands to aiohttp."""


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections are handled by ``_Handler``, with ``DIRECT_POSTS``,
    and by the fast path first where the application has ``FAST_POSTS``."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.settings = settings

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp has no parameter for the handler class: the application builds a plain Server
        # (it needs the app's private request factory), so the instance is given our subclass.
        server.__class__ = _Server
        assert isinstance(server, _Server)
        routes = self.app.get(DIRECT_POSTS)
        if routes:
            server.request_handler = _direct(routes, server.request_handler)
        fast = self.app.get(FAST_POSTS)
        if fast:
            server.front = Front(
                {path.encode(): route for path, route in fast.items()},
                server.handler,
                max_body=self.settings.max_body_bytes,
                read_timeout=self.settings.read_timeout,
                keepalive=self.settings.keepalive_timeout,
                max_line=MAX_LINE_SIZE,
                max_field=MAX_FIELD_SIZE,
                max_headers=MAX_HEADERS,
            )
        return server


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The runner ``relay serve``/``run``/``work`` start, and the tests start on loopback."""
    return Runner(
        app,
        settings,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace,
        **server_options(settings),
    )
