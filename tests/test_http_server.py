"""The HTTP edge (relay/http_server.py): callbacks served by aiohttp alone, through its public API.
What the fast path once honoured itself (pipelining in order, limits, 400 answers, ``Connection:
close``, a half-close, shutdown) holds on aiohttp, with the same assertions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from relay.app import create_app
from relay.http_server import make_runner
from relay.keys import Keys
from relay.settings import Settings
from tests.callbacks import callback_body, signed
from tests.hostile import (
    RawResponse,
    closed_by_server,
    hang_up,
    read_response,
    request_head,
    served,
)


def callback_request(extra: dict[str, str] | None = None) -> bytes:
    body = callback_body()
    return request_head(headers={**signed(body), **(extra or {})}, length=len(body)) + body


def get(path: str) -> bytes:
    return request_head(path, method="GET")


async def stream_length(redis: Any, keys: Keys) -> int:
    return sum([await redis.xlen(stream) for stream in keys.all_events()])


@asynccontextmanager
async def connected(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        await hang_up(writer)


async def responses(port: int, data: bytes, count: int, within: float = 5.0) -> list[RawResponse]:
    """Send ``data`` in one write on one connection; read ``count`` answers in order."""
    async with connected(port) as (reader, writer):
        writer.write(data)
        async with asyncio.timeout(within):
            return [await read_response(reader) for _ in range(count)]


async def one_answer(port: int, data: bytes) -> RawResponse:
    (answer,) = await responses(port, data, 1)
    return answer


# --- which requests it answers ----------------------------------------------------------------


async def test_callbacks_in_every_framing_are_accepted(settings: Settings, redis: Any, keys: Keys) -> None:
    """A signed callback with a Content-Length, a chunked one, one sent over HTTP/1.0, and one
    with Expect: 100-continue (after aiohttp's interim 100): all are accepted."""
    body = callback_body()
    chunked = request_head(
        headers={**signed(body), "Transfer-Encoding": "chunked"}
    ) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    http10 = callback_request().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    async with served(settings, redis) as relay:
        answers = [await one_answer(relay.port, callback_request()) for _ in range(3)]
        answers += [await one_answer(relay.port, data) for data in (chunked, http10)]
        interim, final = await responses(relay.port, callback_request({"Expect": "100-continue"}), 2)
    assert [a.status for a in answers] == [200] * 5
    assert (interim.status, final.status) == (100, 200)
    assert await stream_length(redis, keys) == 6


async def test_callback_answers_carry_aiohttps_headers(settings: Settings, redis: Any) -> None:
    """The same headers as aiohttp gives: JSON, its length, Date and Server."""
    async with served(settings, redis) as relay:
        (answer,) = await responses(relay.port, callback_request(), 1)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.body)
    assert answer.headers["date"].endswith(" GMT") and answer.headers["server"].startswith("Python/")
    assert answer.body == b'{"status":"accepted","events":1}'


# --- one connection, in order -----------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order(settings: Settings, redis: Any, keys: Keys) -> None:
    """Two callbacks, a GET and a third callback, written at once on one connection:
    four answers, in the order asked, and three callbacks on the stream."""
    data = callback_request() + callback_request() + get("/healthz") + callback_request()
    async with served(settings, redis) as relay:
        answers = await responses(relay.port, data, 4)
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert [a.body.startswith(b'{"status":"accepted"') for a in answers] == [True, True, False, True]
    assert b"accepted" not in answers[2].body
    assert await stream_length(redis, keys) == 3


async def test_a_kept_alive_connection_serves_callbacks_and_other_routes(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        statuses = []
        for data in (callback_request(), get("/healthz"), callback_request(), get("/nope")):
            writer.write(data)
            async with asyncio.timeout(5):
                statuses.append((await read_response(reader)).status)
    assert statuses == [200, 200, 200, 404]
    assert await stream_length(redis, keys) == 2


async def test_many_pipelined_callbacks_are_all_answered_in_order(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """Forty at once: aiohttp's reading pauses and resumes, nothing is dropped."""
    bodies = [callback_body(webhook_id=n) for n in range(40)]
    data = b"".join(request_head(headers=signed(b), length=len(b)) + b for b in bodies)
    async with served(settings, redis) as relay:
        answers = await responses(relay.port, data, len(bodies))
    assert [a.status for a in answers] == [200] * len(bodies)
    assert await stream_length(redis, keys) == len(bodies)


def _batches() -> float:
    return REGISTRY.get_sample_value("relay_ingest_batch_size_count") or 0.0


def _malformed() -> float:
    return REGISTRY.get_sample_value("relay_http_malformed_total") or 0.0


async def test_malformed_bytes_in_the_read_of_a_callback_get_aiohttps_400(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """A callback followed, in the same write, by bytes that are not HTTP: aiohttp refuses the
    read whole: one 400 with CallFire's body, counted, the connection closed, nothing written."""
    before = _malformed()
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(callback_request() + b"\x01\x02 nonsense\r\n\r\n")
        async with asyncio.timeout(5):
            answer = await read_response(reader)
        assert await closed_by_server(reader, within=5)
    assert answer.status == 400
    assert b"malformed HTTP request" in answer.body
    assert _malformed() == before + 1
    assert await stream_length(redis, keys) == 0


async def test_an_endless_head_is_refused(settings: Settings, redis: Any) -> None:
    """A header line that never ends is refused as too long (400), before the head is complete."""
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(request_head().removesuffix(b"\r\n") + b"X-Long: ")
        with contextlib.suppress(ConnectionError):  # aiohttp may close before all is sent
            for _ in range(2 * 256 * 1024 // 8192 + 2):
                writer.write(b"a" * 8192)
                await writer.drain()
        async with asyncio.timeout(5):
            answer = await read_response(reader)
    assert answer.status == 400
    assert b"malformed HTTP request" in answer.body


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": None},
        {"Host": "relay.test", "host": "other.test"},
        {"Content-Type": "application/json", "content-type": "text/plain"},
        {"User-Agent": "a", "user-agent": "b"},
        {"Sec-WebSocket-Key1": "x"},
    ],
    ids=["no Host", "two Hosts", "two Content-Types", "two User-Agents", "old WebSocket key"],
)
async def test_a_callback_with_a_head_aiohttp_refuses_is_not_accepted(
    settings: Settings, redis: Any, keys: Keys, headers: dict[str, str | None]
) -> None:
    """A signed callback whose head aiohttp would refuse (400: HTTP/1.1 without Host, a header
    RFC 9110 allows once sent twice, the old WebSocket handshake) is refused, not accepted."""
    body = callback_body()
    lines = [b"POST /callbacks/callfire HTTP/1.1"]
    if "Host" in headers and headers["Host"] is None:
        headers = {k: v for k, v in headers.items() if k != "Host"}
    else:
        lines.append(b"Host: relay.test") if "Host" not in headers else None
    lines += [f"{k}: {v}".encode() for k, v in {**headers, **signed(body)}.items() if v is not None]
    lines.append(b"Content-Length: %d" % len(body))
    async with served(settings, redis) as relay:
        answer = await one_answer(relay.port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    assert answer.status == 400
    assert b"malformed HTTP request" in answer.body
    assert await stream_length(redis, keys) == 0


async def test_pipelined_callbacks_after_failed_signatures_meet_the_limit(
    make_settings: Callable[..., Settings], redis: Any, keys: Keys
) -> None:
    """A good callback, then 12 badly signed ones in one write, with a limit of 5 failures:
    5 are refused 401 and the rest 429."""
    settings = make_settings(auth_failure_limit=5)
    bad = [callback_body() for _ in range(12)]
    data = callback_request() + b"".join(
        request_head(headers={"X-CallFire-Signature": "AAAA"}, length=len(b)) + b for b in bad
    )
    async with served(settings, redis) as relay:
        answers = await responses(relay.port, data, 13)
    assert [a.status for a in answers] == [200] + [401] * 5 + [429] * 7
    assert await stream_length(redis, keys) == 1


async def test_an_overlong_content_length_is_400_not_500(settings: Settings, redis: Any) -> None:
    """A Content-Length of 5,000 digits (llhttp accepts it, Python's int() refuses past 4,300):
    a 400 with CallFire's body, not an internal error."""
    body = callback_body()
    head = request_head(headers=signed(body)).removesuffix(b"\r\n")
    data = head + b"Content-Length: " + b"0" * 5000 + b"%d\r\n\r\n" % len(body) + body
    async with served(settings, redis) as relay:
        answer = await one_answer(relay.port, data)
    assert answer.status == 400
    assert orjson.loads(answer.body)["httpStatusCode"] == 400


# --- how it ends ------------------------------------------------------------------------------


async def test_connection_close_is_honoured(settings: Settings, redis: Any, keys: Keys) -> None:
    """Connection: close: the answer says so, the server closes, a request sent after is unread."""
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(callback_request({"Connection": "close"}))
        async with asyncio.timeout(5):
            answer = await read_response(reader)
        with contextlib.suppress(ConnectionError):
            writer.write(callback_request())
        assert await closed_by_server(reader, within=5)
    assert (answer.status, answer.headers["connection"]) == (200, "close")
    assert await stream_length(redis, keys) == 1


async def test_bytes_after_connection_close_in_one_write_are_refused(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """A request after a ``Connection: close`` one, in the same write: aiohttp's strict parser
    refuses the read whole (400), closes, and nothing is written."""
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(callback_request({"Connection": "close"}) + callback_request())
        async with asyncio.timeout(5):
            answer = await read_response(reader)
        assert await closed_by_server(reader, within=5)
    assert answer.status == 400
    assert await stream_length(redis, keys) == 0


async def test_a_client_that_half_closes_is_closed_and_its_callback_kept(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """The request, then the client shuts its sending side: the connection ends (aiohttp does not
    promise an answer on a half-closed connection); the callback is made durable, once, so a
    retry of it is a duplicate."""
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(callback_request())
        writer.write_eof()
        assert await closed_by_server(reader, within=5)
        async with asyncio.timeout(5):
            while await stream_length(redis, keys) == 0:
                await asyncio.sleep(0.01)
    assert await stream_length(redis, keys) == 1


async def test_shutdown_answers_the_callback_in_flight_then_closes(
    make_settings: Callable[..., Settings], redis: Any, keys: Keys
) -> None:
    """Redis is paused while a callback is being written; the server is told to stop: an idle
    connection closes at once, the callback still gets its 200 once Redis answers (within
    RELAY_REDIS_TIMEOUT), then its connection closes."""
    settings = make_settings(redis_timeout=10)
    runner = make_runner(create_app(settings, redis), settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await redis.execute_command("CLIENT", "PAUSE", "2000", "WRITE")
        batches = _batches()
        writer.write(callback_request())
        async with asyncio.timeout(5):
            while _batches() == batches:  # until its write is under way, held by the pause
                await asyncio.sleep(0.01)
        stopping = asyncio.create_task(runner.cleanup())
        assert await closed_by_server(idle_reader, within=1.0)  # well before the pause ends
        async with asyncio.timeout(5):
            answer = await read_response(reader)
        assert await closed_by_server(reader, within=5)
        await stopping
    finally:
        await hang_up(writer)
        await hang_up(idle_writer)
        await runner.cleanup()
    assert answer.status == 200
    assert await stream_length(redis, keys) == 1


async def test_shutdown_answers_the_request_begun_and_waits_once(
    make_settings: Callable[..., Settings], redis: Any, keys: Keys
) -> None:
    """A callback and a GET pipelined while Redis is paused, then the server is told to stop:
    the callback is answered, and stopping takes the pause, not RELAY_SHUTDOWN_GRACE."""
    settings = make_settings(redis_timeout=10, shutdown_grace=20)
    runner = make_runner(create_app(settings, redis), settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    loop = asyncio.get_running_loop()
    try:
        async with connected(runner.addresses[0][1]) as (reader, writer):
            await redis.execute_command("CLIENT", "PAUSE", "500", "WRITE")
            batches = _batches()
            writer.write(callback_request() + get("/healthz"))
            async with asyncio.timeout(5):
                while _batches() == batches:
                    await asyncio.sleep(0.01)
            started = loop.time()
            await runner.cleanup()
            took = loop.time() - started
            async with asyncio.timeout(5):
                answer = await read_response(reader)
            assert await closed_by_server(reader, within=5)
    finally:
        await runner.cleanup()
    assert answer.status == 200
    assert took < settings.shutdown_grace / 2
    assert await stream_length(redis, keys) == 1
