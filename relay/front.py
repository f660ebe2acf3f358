"""The callbacks' fast path: their POSTs read and answered on httptools, all else on aiohttp.

aiohttp's per-request machinery (request and response objects, header multidicts, a task per
connection, its writer) costs about as much CPU as the relay's whole ingest work. So the port a
relay serves speaks HTTP/1.1 through ``Connection``, a protocol on httptools (llhttp, the parser
aiohttp itself builds on), which serves only the common case of a ``FastRoute``:

- an HTTP/1.1 ``POST`` to the route's exact path, with a ``Content-Length`` of at most
  ``max_body_bytes``, no ``Transfer-Encoding``, ``Expect`` or ``Upgrade``, identity encoding, a
  head within the server's limits (``MAX_LINE_SIZE``, ``MAX_FIELD_SIZE``, ``MAX_HEADERS``), from
  an address the route admits.

Anything else (another path or method, a chunked or compressed body, HTTP/1.0, malformed bytes,
a held-back address, ...) hands the connection to aiohttp, from that request's first byte on,
for good: aiohttp parses it again and answers it as on any other route, with every limit and
error body of ``http_server``. The two never answer on one connection at once: a hand-off waits
until the answers in flight are written, so responses keep their order. Pipelined requests,
``Connection: close`` and a client's half-close are the fast path's own to honour.

Timeouts are aiohttp's: a head must arrive within ``keepalive_timeout`` of the connection opening
or of the previous answer (else the connection closes), a body within ``read_timeout`` of its
head (else 408). One sweeper per server checks them, so a request costs no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol, cast

import httptools
import orjson
import structlog
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.tcp_helpers import tcp_nodelay

from relay.errors import ApiError, error_body

log = structlog.get_logger("relay.http")

MAX_PIPELINED = 8
"""Requests parsed ahead of their answers on one connection; past this, reading pauses."""
MAX_HEAD_BYTES = 64 * 1024
"""Bytes read while a head is incomplete past which aiohttp takes over: httptools gathers a
header line whole, with no limit of its own, while aiohttp refuses one past ``MAX_FIELD_SIZE``
as it arrives. So an endless head costs the fast path at most this and one read (256 KiB at
most), and aiohttp answers it."""
MAX_UNSPLIT_BYTES = 256 * 1024
"""Bytes kept since the parser was last between requests (to hand off from a request's first
byte) past which they are cut at the start of the request being read (``message_end``)."""
LINGER_SECONDS = 2.0
"""After a 408 the connection stops reading but closes only this much later, as aiohttp's does,
so the client's unread bytes do not make the kernel reset the connection before it reads the 408."""
_SCAN_STEP = 4096
_SINGLETONS = {
    name: 1 << bit
    for bit, name in enumerate(
        (b"content-length", b"content-location", b"content-range", b"content-type", b"etag", b"host",
         b"max-forwards", b"server", b"user-agent")
    )
}  # fmt: skip
"""The headers aiohttp refuses twice (400); ``host`` is also required (HTTP/1.1)."""
_HOST = _SINGLETONS[b"host"]
_REFUSED = frozenset((b"transfer-encoding", b"expect", b"upgrade", b"sec-websocket-key1"))
"""Headers that send a request to aiohttp: chunked bodies, 100-continue, upgrades, and the
old WebSocket handshake aiohttp refuses."""

Reply = tuple[int, bytes]


class Work(Protocol):
    """A request under way: ``reply()`` is called once ``future`` is done."""

    @property
    def future(self) -> asyncio.Future[int]: ...

    def reply(self) -> Reply: ...


class FastRoute(Protocol):
    """What the fast path needs of a route (the listener is one)."""

    header: bytes
    """The one request header it reads (lower case), passed to ``accept`` as text or None."""

    def admits(self, remote: str | None) -> bool:
        """False: hand the request to aiohttp (e.g. an address to answer 429)."""

    def accept(self, body: bytes, header: str | None, remote: str | None) -> Work:
        """Start the work for a whole request; refusals raise ``ApiError``."""

    def body_timed_out(self) -> ApiError:
        """The error to answer a body that did not arrive within ``read_timeout``."""


class _HandOff(Exception):
    """Raised inside the parser: this request is aiohttp's."""


class _Last(Exception):
    """Raised inside the parser: bytes after a ``Connection: close`` request, left unread."""


class _DateAndServer:
    """The ``Date`` and ``Server`` headers (aiohttp's), formatted once a second."""

    def __init__(self) -> None:
        self.second = 0
        self.lines = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            date = formatdate(now, usegmt=True)
            self.lines = f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n".encode()
        return self.lines


_date_and_server = _DateAndServer()
_STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


def response(status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    """A whole HTTP/1.1 response with a JSON body, as aiohttp's would read."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode() if headers else b""
    return b"%sContent-Type: application/json\r\nContent-Length: %d\r\n%s%s%s\r\n%s" % (
        _STATUS[status],
        len(body),
        _date_and_server(),
        extra,
        b"Connection: close\r\n" if close else b"",
        body,
    )


def error_response(error: ApiError, close: bool = False) -> bytes:
    body = orjson.dumps(error_body(error.status, error.message, error.internal_code))
    return response(error.status, body, error.headers, close)


class _Ends:
    def __init__(self) -> None:
        self.count = 0

    def on_message_complete(self) -> None:
        self.count += 1


def message_end(data: bytes, count: int) -> int:
    """The offset just past the ``count``-th whole request in ``data`` (0 for none), where the
    next one begins. ``data`` starts between requests, and holds ``count`` whole ones."""
    if count == 0:
        return 0
    ends = _Ends()
    parser = httptools.HttpRequestParser(ends)
    start = 0
    while ends.count < count:  # coarse: the step that holds the end
        if start >= len(data):
            raise ValueError("fewer whole requests than counted")
        with contextlib.suppress(httptools.HttpParserError):  # past the end: not this scan's business
            parser.feed_data(data[start : start + _SCAN_STEP])
        if ends.count < count:
            start += _SCAN_STEP
    ends = _Ends()
    parser = httptools.HttpRequestParser(ends)
    parser.feed_data(data[:start])
    for offset in range(start, min(start + _SCAN_STEP, len(data))):  # fine: byte by byte
        parser.feed_data(data[offset : offset + 1])
        if ends.count == count:
            return offset + 1
    raise ValueError("fewer whole requests than counted")


class Front:
    """The fast path of one server: its routes, its connections and their sweeper."""

    def __init__(
        self,
        routes: dict[bytes, FastRoute],
        fallback: Callable[[], asyncio.Protocol],
        *,
        max_body: int,
        read_timeout: float,
        keepalive: float,
        max_line: int,
        max_field: int,
        max_headers: int,
    ) -> None:
        self.routes = routes
        self.fallback = fallback
        """Makes aiohttp's protocol for a connection handed off."""
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self.max_line = max_line
        self.max_field = max_field
        self.max_headers = max_headers
        self.connections: set[Connection] = set()
        self.closing = False
        self._sweeper: asyncio.Task[None] | None = None
        self._gone = asyncio.Event()

    def __call__(self) -> Connection:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="front-sweeper")
        return Connection(self)

    async def _sweep(self) -> None:
        interval = min(1.0, max(0.01, min(self.keepalive, self.read_timeout) / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for connection in [c for c in self.connections if c.deadline < now]:
                try:
                    connection.expire()
                except Exception as exc:  # one connection's fault must not stop the sweeping
                    log.error("connection timeout failed", exc_info=exc)
                    connection.abort()

    def close_idle(self) -> None:
        """Stop serving: idle connections close now, the rest once their answers are written."""
        self.closing = True
        if not self.connections:
            self._gone.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.close_when_idle()

    async def shutdown(self, within: float | None) -> None:
        """``close_idle``, then wait for the rest up to ``within`` seconds; those left are cut."""
        self.close_idle()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._gone.wait()
        for connection in list(self.connections):
            connection.abort()

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.closing and not self.connections:
            self._gone.set()


_IDLE, _HEAD, _BODY = 0, 1, 2


class Connection(asyncio.Protocol):
    """One client connection while it is the fast path's (see the module's docstring)."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + front.keepalive
        self.state = _IDLE
        self.head_bytes = 0
        """Bytes of the reads that ended inside the head being parsed, since the one it began in."""
        self.begun = 0
        """Requests begun on this connection."""
        # The request being parsed
        self.url = b""
        self.header_count = 0
        self.singletons = 0
        self.header: str | None = None
        self.length = -1
        self.route: FastRoute | None = None
        self.body: list[bytes] = []
        # Bytes since the parser was last between requests, and the requests they hold whole
        self.since_boundary: list[bytes] = []
        self.kept = 0
        self.whole = 0
        self.keep_alive = True
        self.last = False
        """No request after this one is read (``Connection: close``, or the client half-closed):
        the connection closes once the answers are written."""
        # Requests parsed, waiting for their answer in order; the one under way, and its keep-alive
        self.queue: deque[tuple[FastRoute, bytes, str | None, bool]] = deque()
        self.work: Work | None = None
        self.keep = True
        self.handing_off: bytes | None = None
        self.write_paused = False
        self.reading_paused = False
        self.closing = False

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        tcp_nodelay(self.transport, True)
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else None
        self.front.connections.add(self)
        if self.front.closing:
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.forget(self)
        self.closing = True
        self.queue.clear()  # a write under way still lands; nobody is left to answer

    def data_received(self, data: bytes) -> None:
        if self.handing_off is not None or self.closing or self.last:
            return
        if self.state == _IDLE:
            self.since_boundary = [data]
            self.kept = len(data)
            self.whole = 0
        else:
            self.since_boundary.append(data)
            self.kept += len(data)
        begun = self.begun
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, _HandOff, _Last):
            if not self.last:  # aiohttp parses this request again: answers it, or refuses it
                self._hand_off()
                return
        if self.state == _HEAD:  # a head still incomplete: what httptools holds of it is bounded
            # A head begun in this read holds part of it at most; one begun before, all of it.
            self.head_bytes = self.head_bytes + len(data) if self.begun == begun else 0
            if self.head_bytes > MAX_HEAD_BYTES:
                self._hand_off()
                return
        if self.kept > MAX_UNSPLIT_BYTES and self.whole and self.state != _IDLE:
            self._cut_since_boundary()
        if not self.closing:
            self._pace()

    def _cut_since_boundary(self) -> None:
        """Keep only the bytes of the request being read: a client whose every read ends inside
        a request would otherwise leave all it ever sent here. Costs a scan of what is kept, once
        per ``MAX_UNSPLIT_BYTES`` read at most."""
        data = b"".join(self.since_boundary)
        try:
            data = data[message_end(data, self.whole) :]
        except ValueError:  # cannot happen for bytes llhttp parsed: but never keep a guess
            self.abort()
            return
        self.since_boundary, self.kept, self.whole = [data], len(data), 0

    def eof_received(self) -> bool:
        """The client sent all it will (a half-close): answer what was read whole, then close."""
        self.last = True
        if self.work is None and not self.queue and self.handing_off is None:
            self.close()
        return True  # keep the transport open for the answers

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pace()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._pace()

    # --- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.last:
            raise _Last
        self.state = _HEAD
        self.begun += 1
        self.url = b""
        self.route = None
        self.header_count = 0
        self.singletons = 0
        self.header = None
        self.length = -1
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.front.max_line:
            raise _HandOff

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count == 1:  # the URL is whole
            self.route = self.front.routes.get(self.url)
        if (
            self.header_count > self.front.max_headers
            or len(name) > self.front.max_field
            or len(value) > self.front.max_field
        ):
            raise _HandOff
        name = name.lower()
        bit = _SINGLETONS.get(name, 0)
        if bit:
            if self.singletons & bit:
                raise _HandOff  # aiohttp answers 400
            self.singletons |= bit
            if name == b"content-length":
                self.length = int(value)  # llhttp checked it is digits; past 4300 of them, ValueError
        elif name == b"content-encoding":
            if value.strip().lower() not in (b"", b"identity"):
                raise _HandOff
        elif name in _REFUSED:
            raise _HandOff
        elif self.route is not None and name == self.route.header:
            if self.header is not None:
                raise _HandOff
            self.header = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        route = self.route if self.header_count else self.front.routes.get(self.url)
        if (
            route is None
            or self.parser.get_method() != b"POST"
            or not 0 <= self.length <= self.front.max_body
            or not self.singletons & _HOST  # aiohttp answers 400: HTTP/1.1 requires Host
            or self.parser.get_http_version() != "1.1"
            or not route.admits(self.remote)
        ):
            raise _HandOff
        self.route = route
        self.keep_alive = self.parser.should_keep_alive()
        self.state = _BODY
        self.deadline = self.loop.time() + self.front.read_timeout

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.route is not None
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.queue.append((self.route, body, self.header, self.keep_alive))
        self.last = self.last or not self.keep_alive  # Connection: close: nothing after it is read
        self.body = []
        self.state = _IDLE
        self.whole += 1
        if self.work is None:
            self._next()

    # --- answering ------------------------------------------------------------------------

    def _next(self) -> None:
        """Start the next parsed request; with none left, finish a hand-off or wait for more."""
        while self.queue:
            route, body, header, self.keep = self.queue.popleft()
            try:
                work = route.accept(body, header, self.remote)
            except Exception as exc:
                self._write(self._error(exc))
                continue
            self.work = work
            work.future.add_done_callback(self._done)
            self._pace()
            return
        if self.handing_off is not None and not self.front.closing:
            self._switch(self.handing_off)
        elif self.closing or self.front.closing or self.last:
            self.close()
        elif self.state != _BODY:  # the next head is due within keepalive of this answer
            self.deadline = self.loop.time() + self.front.keepalive
        self._pace()

    def _done(self, _: asyncio.Future[int]) -> None:
        work, self.work = self.work, None
        assert work is not None
        try:
            status, body = work.reply()
        except Exception as exc:
            self._write(self._error(exc))
        else:
            self._write(response(status, body, close=not self.keep))
        self._next()

    def _error(self, exc: Exception) -> bytes:
        if not isinstance(exc, ApiError):  # a fault of ours: the client gets CallFire's 500 body
            log.error("unhandled error", path=self.url.decode("latin-1"), exc_info=exc)
            exc = ApiError(500, "internal error")
        return error_response(exc, close=not self.keep)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _pace(self) -> None:
        """Read while answers keep up: pause when the client does not read its answers or has
        too many requests parsed ahead; resume when they drain."""
        if self.transport is None or self.handing_off is not None:
            return
        pause = self.write_paused or len(self.queue) >= MAX_PIPELINED
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()
                if self.state == _BODY:  # the time reading was paused is not the client's
                    self.deadline = max(self.deadline, self.loop.time() + self.front.read_timeout)

    # --- hand-off, timeouts, closing ------------------------------------------------------

    def _hand_off(self) -> None:
        data = b"".join(self.since_boundary)
        self.since_boundary = []
        try:
            data = data[message_end(data, self.whole) :]
        except ValueError:  # cannot happen for bytes llhttp parsed: but never hand off a guess
            self.abort()
            return
        self.handing_off = data
        self.deadline = float("inf")
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        if self.work is None and not self.queue:
            self._switch(data)

    def _switch(self, data: bytes) -> None:
        transport = self.transport
        self.front.forget(self)
        if transport is None or transport.is_closing():
            return
        handler = self.front.fallback()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        transport.resume_reading()  # before the data: aiohttp may pause reading as it takes it
        if data:
            handler.data_received(data)

    def expire(self) -> None:
        """The sweeper's call once ``deadline`` passed: a body late gets 408, a head late or an
        idle keep-alive connection is closed."""
        if self.work is not None or self.queue or self.handing_off is not None or self.reading_paused:
            return
        if self.state == _BODY and self.route is not None:
            self._write(error_response(self.route.body_timed_out(), close=True))
            self._linger()
        else:
            self.close()

    def _linger(self) -> None:
        """Answered, nothing more to read: stop reading now, close after ``LINGER_SECONDS``."""
        self.last = True  # what arrives is dropped
        self.front.forget(self)
        if self.transport is not None:
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def close_when_idle(self) -> None:
        self.closing = True
        if self.work is None and not self.queue and self.handing_off is None:
            self.close()

    def close(self) -> None:
        self.closing = True
        self.front.forget(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.front.forget(self)
        if self.transport is not None:
            self.transport.abort()
