"""The delivery client's answer reading (relay/delivery/http1.py), differentially against h11:
every answer split at every byte boundary reads the same as h11 reads it (status, and whether the
connection may carry another request); plus the bounds a hostile answer meets."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import pytest

from relay.delivery.http1 import ANSWER_BYTES, MAX_INTERIM, Answer, Connection

REQUEST = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;ext=1\r\nabc\r\n0\r\n\r\n"
TRAILERS = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Sum: 1\r\n\r\n"

Reading = tuple[str, int | None, bool]
"""("answer", status, reusable) or ("error", None, False)."""

# Answers each side must read the same way, whatever the split. ``eof``: the server closes after.
ANSWERS: dict[str, tuple[bytes, bool]] = {
    "content-length": (OK, False),
    "empty body": (b"HTTP/1.1 204 No Content\r\n\r\n", False),
    "zero length": (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    "body of newlines": (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\r\n\r\n", False),
    "chunked": (CHUNKED, False),
    "trailers": (TRAILERS, False),
    "1xx first": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, False),
    "retry-after": (b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n", False),
    "connection close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True),
    "until close": (b"HTTP/1.1 200 OK\r\n\r\nthe body runs until the connection ends", True),
    "HTTP/1.0": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    "HTTP/1.0 keep-alive": (
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        False,
    ),
    "redirect": (b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", False),
    "stale answer after": (OK + b"HTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n", False),
    "a byte after": (OK + b"x", False),
    "a CRLF after": (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n", False),
    "a CRLF after chunked": (CHUNKED + b"\r\n", False),
    "not HTTP": (b"NOT HTTP AT ALL\r\n\r\n", True),
    "bad chunk size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True),
    "two lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", True),
    "closed in the head": (b"HTTP/1.1 200 OK\r\nContent-Le", True),
}


MALFORMED = ("not HTTP", "bad chunk size", "two lengths", "closed in the head")


class _Transport(asyncio.Transport):
    """Stands in for the socket: keeps what was written, notes the close."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


def ours(pieces: list[bytes], eof: bool) -> Reading:
    conn = Connection()
    conn.connection_made(_Transport())
    answer = conn.send(REQUEST)
    for piece in pieces:
        if conn.closed:
            break
        if piece:  # asyncio never hands over empty data
            conn.data_received(piece)
    if eof and not conn.closed:
        conn.eof_received()
        conn.connection_lost(None)
    assert answer.done(), "a whole answer (or the close) always settles the request"
    if answer.exception() is not None:
        return ("error", None, False)
    result: Answer = answer.result()
    return ("answer", result.status, conn.reusable and not conn.closed)


def theirs(pieces: list[bytes], eof: bool) -> Reading:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/hook", headers=[("Host", "x"), ("Content-Length", "2")]))
    conn.send(h11.Data(data=b"{}"))
    conn.send(h11.EndOfMessage())
    status: int | None = None
    try:
        for piece in [*(p for p in pieces if p), *([b""] if eof else [])]:  # b"": the end
            conn.receive_data(piece)
            while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Response):
                    status = event.status_code
                if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    except h11.RemoteProtocolError:
        return ("error", None, False) if conn.their_state is not h11.DONE else ("answer", status, False)
    if conn.their_state not in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
        return ("error", None, False)
    reusable = conn.their_state is h11.DONE and conn.trailing_data == (b"", False)
    return ("answer", status, reusable)


def splits(data: bytes) -> list[list[bytes]]:
    """The answer in two pieces cut at every byte boundary, and one byte at a time."""
    return [[data[:i], data[i:]] for i in range(len(data) + 1)] + [
        [data[i : i + 1] for i in range(len(data))]
    ]


@pytest.mark.parametrize("name", list(ANSWERS))
async def test_reads_as_h11_does_at_every_split(name: str) -> None:
    """Status and reusability agree with h11's reading, wherever the answer is cut into reads."""
    data, eof = ANSWERS[name]
    expected = theirs([data], eof)
    assert (expected[0] == "error") is (name in MALFORMED)
    for pieces in splits(data):
        assert ours(pieces, eof) == expected, (name, [len(p) for p in pieces])
        assert theirs(pieces, eof) == expected


async def test_reuse_only_after_exactly_one_answer() -> None:
    """Only a keep-alive answer ending exactly at the end of what came may carry another request."""
    assert ours([OK], eof=False) == ("answer", 200, True)
    assert ours([OK + b"\r\n"], eof=False) == ("answer", 200, False)
    assert ours([OK, b"H"], eof=False) == ("answer", 200, False)


async def test_bytes_while_idle_close_the_connection() -> None:
    """An answer nobody asked for (an early or stale one) closes the idle connection."""
    conn = Connection()
    conn.connection_made(_Transport())
    conn.data_received(b"HTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n")
    assert conn.closed


@pytest.mark.parametrize(
    ("answer", "reading"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * ANSWER_BYTES, ("error", None, False)),  # endless head
        (b"HTTP/1.1 200 OK\r\n" + b"X-Many: y\r\n" * (ANSWER_BYTES // 8), ("error", None, False)),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * ANSWER_BYTES) + b"x" * 2 * ANSWER_BYTES,
            ("answer", 200, False),
        ),
        (TRAILERS[:-2] + b"X-Endless: " + b"t" * ANSWER_BYTES, ("answer", 202, False)),  # endless trailer
        (b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_INTERIM + 1) + OK, ("error", None, False)),
    ],
    ids=["endless header", "endless headers", "large body", "endless trailer", "too many 1xx"],
)
async def test_one_budget_per_answer(answer: bytes, reading: Reading) -> None:
    """Head, body and trailers share one budget; 1xx answers are bounded: past either, the
    connection closes, the status counting if it came."""
    for pieces in ([answer], [answer[i : i + 4096] for i in range(0, len(answer), 4096)]):
        assert ours(pieces, eof=False) == reading
