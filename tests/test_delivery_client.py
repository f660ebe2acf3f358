"""The delivery HTTP client (relay/delivery/http1.py through client.Sender) against raw servers
that answer in every shape HTTP/1.1 allows, and some it does not."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from relay.delivery.client import Sender, encode, target_of
from relay.delivery.http1 import ANSWER_BYTES
from relay.delivery.message import OutboundRequest
from relay.delivery.policy import AttemptResult
from relay.egress import EgressAllow

LOOPBACK = EgressAllow.parse("127.0.0.0/8")
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Answerer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Reads each request (head and Content-Length body) and writes ``answer(n)`` as given, raw."""

    def __init__(
        self, *answers: bytes, hold: bool = False, close: bool = False, tls: ssl.SSLContext | None = None
    ) -> None:
        self.answers = list(answers)
        self.hold = hold
        self.close_after = close
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._closing.set()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 2)

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                if self.hold:
                    await self._closing.wait()
                    break
                answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                writer.write(answer)
                await writer.drain()
                if self.close_after or b"connection: close" in answer.lower() or b"until-close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    out = Sender(allow=LOOPBACK, timeout=1.0, max_connections=8)
    await out.start()
    yield out
    await out.close()


async def post(sender: Sender, url: str, verify: bool = True) -> AttemptResult:
    return await sender.send(
        OutboundRequest(
            url=url, body=b'{"a":1}', headers={"Content-Type": "application/json"}, verify_ssl=verify
        )
    )


async def serving(*answers: bytes, hold: bool = False, close: bool = False) -> RawServer:
    return await RawServer(*answers, hold=hold, close=close).start()


async def test_keep_alive_connection_is_reused(sender: Sender) -> None:
    """Three deliveries one after the other ride one connection."""
    server = await serving(OK)
    try:
        results = [await post(sender, server.url()) for _ in range(3)]
        assert [r.status for r in results] == [200, 200, 200]
        assert (server.connections, len(server.requests)) == (1, 3)
    finally:
        await server.close()


async def test_connection_close_is_honoured(sender: Sender) -> None:
    """An answer saying `Connection: close` is read, and the next delivery opens a new connection."""
    server = await serving(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    try:
        assert [(await post(sender, server.url())).status for _ in range(2)] == [204, 204]
        assert server.connections == 2
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201),
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, 200),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil-close", 200),
        (b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", 302),
    ],
)
async def test_answer_shapes(sender: Sender, answer: bytes, status: int) -> None:
    """Chunked bodies, informational answers before the real one, a body ending with the
    connection, and a redirect (not followed) all come down to their final status."""
    server = await serving(answer)
    try:
        assert (await post(sender, server.url())).status == status
        assert len(server.requests) == 1
    finally:
        await server.close()


async def test_retry_after_is_read(sender: Sender) -> None:
    """A 503's Retry-After reaches the retry policy."""
    server = await serving(b"HTTP/1.1 503 Busy\r\nretry-after: 7\r\nContent-Length: 0\r\n\r\n")
    try:
        result = await post(sender, server.url())
        assert (result.status, result.retry_after) == (503, "7")
    finally:
        await server.close()


async def test_huge_body_is_not_read_to_its_end(sender: Sender) -> None:
    """A body past the bound: the status counts, the connection is dropped rather than drained."""
    big = b"x" * (ANSWER_BYTES * 4)
    server = await serving(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big))
    try:
        assert [(await post(sender, server.url())).status for _ in range(2)] == [200, 200]
        assert server.connections == 2
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * ANSWER_BYTES + b"\r\n\r\n", "answer is larger"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 3 * ANSWER_BYTES, "answer is larger"),  # never ends
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed before"),
        (b"", "closed before"),
    ],
)
async def test_unreadable_answers_are_errors(sender: Sender, answer: bytes, error: str) -> None:
    """A head past the bound, garbage, or a connection that ends before the answer does: an
    error (the delivery is retried), never a crash."""
    server = await serving(answer, close=True)
    try:
        result = await post(sender, server.url())
        assert result.status is None and error in (result.error or "")
    finally:
        await server.close()


async def test_status_counts_though_the_body_is_cut_short(sender: Sender) -> None:
    """The receiver said 200 and then dropped the connection mid-body: delivered (a retry would
    send it twice), and the connection is not reused."""
    server = await serving(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close=True)
    try:
        assert [(await post(sender, server.url())).status for _ in range(2)] == [200, 200]
        assert server.connections == 2
    finally:
        await server.close()


async def test_no_answer_times_out(sender: Sender) -> None:
    """A receiver that never answers: the attempt ends at the timeout, as an error."""
    server = await serving(OK, hold=True)
    try:
        started = time.monotonic()
        result = await post(sender, server.url())
        assert result.status is None and result.error == "timed out after 1s"
        assert 0.9 < time.monotonic() - started < 2.0
    finally:
        await server.close()


async def test_request_is_what_a_receiver_expects(sender: Sender) -> None:
    """Request line with path and query, Host with the port, the caller's headers, the body."""
    server = await serving(OK)
    try:
        await post(sender, server.url("/in/box?a=1&b=%20"))
        (raw,) = server.requests
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /in/box?a=1&b=%20 HTTP/1.1"
        assert f"Host: 127.0.0.1:{server.port}".encode() in lines
        assert b"Content-Type: application/json" in lines and b"Content-Length: 7" in lines
        assert body == b'{"a":1}'
    finally:
        await server.close()


def test_credentials_in_the_url_become_basic_auth() -> None:
    """`https://user:pw@host/` sends `Authorization: Basic`, as a browser or aiohttp would."""
    head = target_of("https://user:pw@hooks.example/x", verify=True).head
    assert b"Authorization: Basic dXNlcjpwdw==\r\n" in head
    assert head.startswith(b"POST /x HTTP/1.1\r\nHost: hooks.example\r\n")


def test_a_line_break_in_a_header_is_refused() -> None:
    """A header value holding CR or LF never reaches the wire (no header injection)."""
    head = target_of("http://hooks.example/x", verify=True).head
    with pytest.raises(ValueError, match="line break"):
        encode(
            head,
            OutboundRequest(
                url="http://hooks.example/x",
                body=b"",
                headers={"webhook-id": "a\r\nX-Evil: 1"},
                verify_ssl=True,
            ),
        )


@pytest.fixture(scope="module")
def certificate() -> trustme.CA:
    return trustme.CA()


async def tls_server(ca: trustme.CA) -> RawServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return await RawServer(OK, tls=context).start()


async def test_untrusted_certificate_is_refused(sender: Sender, certificate: trustme.CA) -> None:
    """By default the callback's certificate is checked: one no known CA signed fails."""
    server = await tls_server(certificate)
    try:
        result = await post(sender, server.url(scheme="https"))
        assert result.status is None and "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
        assert server.requests == []
    finally:
        await server.close()


async def test_non_strict_ssl_skips_the_certificate_check(sender: Sender, certificate: trustme.CA) -> None:
    """nonStrictSsl: the same server is delivered to, over TLS."""
    server = await tls_server(certificate)
    try:
        assert (await post(sender, server.url(scheme="https"), verify=False)).status == 200
        assert len(server.requests) == 1
    finally:
        await server.close()
