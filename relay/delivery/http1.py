"""A lean HTTP/1.1 client for deliveries: keep-alive connections pooled per origin, one request
at a time on each, the answer parsed by httptools (llhttp, the parser of Node.js).

Only what a delivery needs: a POST with its body; the answer's status and ``Retry-After``; its
body read (its first ``KEPT_BODY_BYTES`` kept, the rest dropped); TLS with or without
certificate checks. It costs a fifth of the CPU of an aiohttp ``ClientSession`` request
(measured: ~20 µs against ~100 µs a request, loop included), which is most of a worker's time.
Redirects are never followed: a 3xx is an answer like any other.

A subscriber cannot make an answer cost more than ``ANSWER_BYTES`` of reading: one budget covers
its head, body and trailers (and any 1xx answers before it, at most ``MAX_INTERIM`` of them);
past it the connection is closed. A connection is reused only when the parser ended exactly at
the end of one answer: a byte past it, or any byte arriving while no request is outstanding,
closes the connection, so no stale answer is ever read as the next one's.

Connecting goes through the caller's resolver (the egress policy filters every DNS answer);
IP-literal hosts are connected to as they are (the caller checks them first). Timeouts, the
policy and the mapping of failures to attempt results are the caller's (``client.Sender``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import NamedTuple, cast

import httptools
from aiohttp.abc import AbstractResolver

ANSWER_BYTES = 64 * 1024
"""What one answer may take to read: head, body and trailers (and any 1xx before it) together.
Past it the connection is closed: an answer whose status came counts as that status (as one cut
short does), anything else is an error."""
MAX_INTERIM = 8
"""Most informational (1xx) answers before the final one; more is an error."""
KEPT_BODY_BYTES = 1024
"""The first bytes of an answer's body kept with it (an attempt's record shows them)."""
_CR_LF = (10, 13)
IDLE_SECONDS = 4.0
"""An idle connection is not reused past this (Node.js servers close theirs after 5 s)."""


class Origin(NamedTuple):
    scheme: str
    host: str
    """As connected to and named in TLS (IDNA-encoded; an IP literal without brackets)."""
    port: int
    verify: bool
    """Check the TLS certificate (``https`` only)."""


class Answer(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes = b""
    """Its first ``KEPT_BODY_BYTES``."""


class ResponseError(Exception):
    """The answer could not be read: malformed, too large, or the connection ended first."""


class Connection(asyncio.Protocol):
    """One keep-alive connection: ``send`` writes a request and resolves with its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._status = 0
        self._retry_after: str | None = None
        self._fed = 0
        """Bytes of the current answer fed to the parser (``ANSWER_BYTES`` at most)."""
        self._interim = 0
        self._kept = b""
        self._in_body = False
        self._done = False
        """The final answer ended: any further byte means the connection cannot be trusted."""

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None and self._waiter is None
        self.reusable = False
        self._status, self._retry_after, self._in_body, self._done = 0, None, False, False
        self._fed = self._interim = 0
        self._kept = b""
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def timed_out(self) -> None:
        """The caller's deadline passed: fail the request, drop the connection."""
        self._fail(TimeoutError())
        self.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._done:  # nobody asked, or past the answer's end
            self.close()
            return
        room = ANSWER_BYTES - self._fed
        over = len(data) > room
        if over:
            data = data[:room]
        self._fed += len(data)
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:
            self._fail(ResponseError("the answer switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            ours = exc.__context__  # raised by one of the callbacks below
            self._fail(ours if isinstance(ours, ResponseError) else ResponseError(f"malformed answer: {exc}"))
            self.close()
        else:
            if over:  # more came than the budget lets the answer take
                self._over_budget()

    def _feed(self, data: bytes) -> None:
        """Feed ``data`` to the parser, noting any byte past the end of the answer. A byte that
        starts another answer reaches ``on_message_begin``; but the parser skips CR and LF between
        answers without a word, so a chunk's trailing run of them is fed one byte at a time,
        looking for the end before each."""
        end = len(data)
        while end and data[end - 1] in _CR_LF:
            end -= 1
        if end:
            self._parser.feed_data(data if end == len(data) else data[:end])
        for at in range(end, len(data)):
            if self._done:
                self.close()  # a CR or LF past the answer's end
                return
            self._parser.feed_data(data[at : at + 1])

    def _over_budget(self) -> None:
        if self._done:
            pass  # the answer ended within the budget: what came past it is extra
        elif self._in_body and self._status >= 200:
            self._resolve()  # the status came: it counts, as for a body cut short
        else:
            self._fail(ResponseError(f"the answer is larger than {ANSWER_BYTES} bytes"))
        self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._in_body and self._status >= 200:
            self._resolve()  # the status came: a body that ran until the close, or was cut short
        else:
            self._fail(ResponseError("the connection closed before an answer came"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self._done:
            raise ResponseError("bytes after the answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_body and name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._in_body = True

    def on_body(self, body: bytes) -> None:
        if len(self._kept) < KEPT_BODY_BYTES:
            self._kept += body[: KEPT_BODY_BYTES - len(self._kept)]

    def on_message_complete(self) -> None:
        if self._status < 200:  # an informational answer (100, 103): the real one follows
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise ResponseError(f"more than {MAX_INTERIM} informational answers")
            self._status, self._in_body, self._retry_after = 0, False, None
            return
        self._done = True
        # HTTP/1.0 keep-alive is not trusted (h11 does not either): such a server closes at will
        self.reusable = self._parser.should_keep_alive() and self._parser.get_http_version() == "1.1"
        self._resolve()

    def _resolve(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            self.close()  # an answer nobody asked for: the connection cannot be trusted
            return
        waiter.set_result(Answer(self._status, self._retry_after, self._kept))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Pool:
    """Connections by origin: an idle one is reused (most recent first), else one is opened."""

    def __init__(self, resolver: AbstractResolver, max_idle: int) -> None:
        self.resolver = resolver
        self.max_idle = max(1, max_idle)
        self._idle: dict[Origin, list[Connection]] = {}
        self._tls: dict[bool, ssl.SSLContext] = {}

    def idle(self, origin: Origin, now: float) -> Connection | None:
        """A live idle connection to ``origin`` (stale ones are closed on the way), or None."""
        stack = self._idle.get(origin)
        while stack:
            conn = stack.pop()
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    def release(self, origin: Origin, conn: Connection, now: float) -> None:
        if not conn.reusable or conn.closed:
            conn.close()
            return
        stack = self._idle.setdefault(origin, [])
        if len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        stack.append(conn)

    def prune(self, now: float) -> None:
        """Close the connections idle too long (call now and then)."""
        for origin, stack in list(self._idle.items()):
            keep = [c for c in stack if not c.closed and now - c.idle_since < IDLE_SECONDS]
            for conn in stack:
                if conn not in keep:
                    conn.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    def close(self) -> None:
        for stack in self._idle.values():
            for conn in stack:
                conn.close()
        self._idle.clear()

    async def open(self, origin: Origin, literal: bool) -> Connection:
        """A new connection; ``literal``: the host is an IP address (connected to as it is).
        Each address the resolver allows is tried in turn; the last failure is raised."""
        loop = asyncio.get_running_loop()
        addresses: list[tuple[str, int]]
        if literal:
            addresses = [(origin.host, socket.AF_UNSPEC)]
        else:
            found = await self.resolver.resolve(origin.host, origin.port, family=socket.AF_UNSPEC)
            addresses = [(r["host"], r["family"]) for r in found]
        tls = self._context(origin.verify) if origin.scheme == "https" else None
        failure: OSError = OSError(f"no address for {origin.host}")
        for address, family in addresses:
            try:
                _, conn = await loop.create_connection(
                    Connection,
                    address,
                    origin.port,
                    family=family,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
            except OSError as exc:
                failure = exc
                continue
            return conn
        raise failure

    def _context(self, verify: bool) -> ssl.SSLContext:
        context = self._tls.get(verify)
        if context is None:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls[verify] = context
        return context
