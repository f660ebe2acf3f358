"""The callbacks' fast path (relay/front.py): which requests it answers, how it hands the rest to
aiohttp on the same connection, in order, and how it ends."""

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
from relay.errors import Handler
from relay.front import MAX_HEAD_BYTES, MAX_UNSPLIT_BYTES, message_end
from relay.http_server import DIRECT_POSTS, make_runner
from relay.keys import Keys
from relay.settings import Settings
from tests.callbacks import call_event, callback_body, signed
from tests.hostile import (
    CALLBACK,
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


# --- where a handed-off request begins --------------------------------------------------------


def test_message_end_finds_where_the_next_request_begins() -> None:
    first = callback_request()
    second = get("/healthz")
    assert message_end(first + second, 0) == 0
    assert message_end(first + second, 1) == len(first)
    assert message_end(first + second + b"garbage", 2) == len(first + second)


def test_message_end_across_many_scan_steps() -> None:
    """A body far longer than the scan's step, then a request whose bytes are malformed."""
    long = request_head(length=50_000) + b"x" * 50_000
    data = long + long + b"\x00 not http\r\n\r\n"
    assert message_end(data, 1) == len(long)
    assert message_end(data, 2) == 2 * len(long)


def test_message_end_refuses_a_count_the_bytes_do_not_hold() -> None:
    with pytest.raises(ValueError):
        message_end(callback_request(), 2)


# --- which requests it answers ----------------------------------------------------------------


@pytest.fixture
def handed(settings: Settings, redis: Any) -> tuple[web.Application, list[str]]:
    """The relay's app whose aiohttp callback handler records each callback it is handed."""
    app = create_app(settings, redis)
    seen: list[str] = []
    usual: Handler = app[DIRECT_POSTS][CALLBACK]

    async def recording(request: web.Request) -> web.StreamResponse:
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        chunked = " Transfer-Encoding" if "Transfer-Encoding" in request.headers else ""
        seen.append(version + chunked)
        return await usual(request)

    app[DIRECT_POSTS][CALLBACK] = recording
    return app, seen


async def test_plain_callbacks_never_reach_aiohttp_the_rest_do(
    settings: Settings, redis: Any, keys: Keys, handed: tuple[web.Application, list[str]]
) -> None:
    """A signed callback with a Content-Length is answered by the fast path; a chunked one and
    one sent over HTTP/1.0 reach aiohttp's handler, and one with Expect: 100-continue gets
    aiohttp's interim 100 (the fast path has none): all are accepted."""
    app, seen = handed
    body = callback_body()
    chunked = request_head(
        headers={**signed(body), "Transfer-Encoding": "chunked"}
    ) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    http10 = callback_request().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    async with served(settings, redis, app) as relay:
        answers = [await one_answer(relay.port, callback_request()) for _ in range(3)]
        assert seen == []
        answers += [await one_answer(relay.port, data) for data in (chunked, http10)]
        interim, final = await responses(relay.port, callback_request({"Expect": "100-continue"}), 2)
    assert [a.status for a in answers] == [200] * 5
    assert seen == ["HTTP/1.1 Transfer-Encoding", "HTTP/1.0"]
    assert (interim.status, final.status) == (100, 200)
    assert await stream_length(redis, keys) == 6


async def test_fast_answers_read_like_aiohttps(settings: Settings, redis: Any) -> None:
    """The same headers as aiohttp gives: JSON, its length, Date and Server."""
    async with served(settings, redis) as relay:
        (answer,) = await responses(relay.port, callback_request(), 1)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.body)
    assert answer.headers["date"].endswith(" GMT") and answer.headers["server"].startswith("Python/")
    assert answer.body == b'{"status":"accepted","events":1}'


# --- one connection, both paths, in order -----------------------------------------------------


async def test_pipelined_requests_are_answered_in_order_across_the_hand_off(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """Two callbacks, a GET for aiohttp and a third callback, written at once on one connection:
    four answers, in the order asked, and three callbacks on the stream."""
    data = callback_request() + callback_request() + get("/healthz") + callback_request()
    async with served(settings, redis) as relay:
        answers = await responses(relay.port, data, 4)
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert [a.body.startswith(b'{"status":"accepted"') for a in answers] == [True, True, False, True]
    assert b"accepted" not in answers[2].body
    assert await stream_length(redis, keys) == 3


async def test_a_kept_alive_connection_moves_to_aiohttp_and_keeps_serving(
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
    """More than MAX_PIPELINED at once: reading pauses and resumes, nothing is dropped."""
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


async def test_malformed_bytes_after_a_callback_get_aiohttps_400(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    before = _malformed()
    async with served(settings, redis) as relay:
        answers = await responses(relay.port, callback_request() + b"\x01\x02 nonsense\r\n\r\n", 2)
    assert [a.status for a in answers] == [200, 400]
    assert b"malformed HTTP request" in answers[1].body
    assert _malformed() == before + 1
    assert await stream_length(redis, keys) == 1


async def test_an_endless_head_is_handed_to_aiohttp_which_refuses_it(settings: Settings, redis: Any) -> None:
    """A header line that never ends is not gathered by the fast path: past MAX_HEAD_BYTES (and
    the read the head began in, 256 KiB at most) aiohttp takes the connection and refuses the
    line as too long, before the head is complete."""
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(request_head().removesuffix(b"\r\n") + b"X-Long: ")
        with contextlib.suppress(ConnectionError):  # aiohttp may close before all is sent
            for _ in range((256 * 1024 + MAX_HEAD_BYTES) // 8192 + 2):
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
async def test_what_aiohttp_refuses_the_fast_path_refuses_too(
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
    """A good callback, then 12 badly signed ones in one write, with a limit of 5 failures: as
    on aiohttp, 5 are refused 401 and the rest 429, though all were read before any failed."""
    settings = make_settings(auth_failure_limit=5)
    bad = [callback_body() for _ in range(12)]
    data = callback_request() + b"".join(
        request_head(headers={"X-CallFire-Signature": "AAAA"}, length=len(b)) + b for b in bad
    )
    async with served(settings, redis) as relay:
        answers = await responses(relay.port, data, 13)
    assert [a.status for a in answers] == [200] + [401] * 5 + [429] * 7
    assert await stream_length(redis, keys) == 1


async def test_a_long_callback_pipelined_before_a_head_stays_on_the_fast_path(
    settings: Settings, redis: Any, handed: tuple[web.Application, list[str]]
) -> None:
    """One read holding a callback of 100 KB and the start of the next one's head: the bytes of
    the whole callback are not counted as head, so neither request goes to aiohttp."""
    app, seen = handed
    long = callback_body(call_event() | {"pad": "x" * 100_000})
    assert len(long) > MAX_HEAD_BYTES
    first = request_head(headers=signed(long), length=len(long)) + long
    second = callback_request()
    async with served(settings, redis, app) as relay, connected(relay.port) as (reader, writer):
        writer.write(first + second[:30])
        await asyncio.sleep(0.05)
        writer.write(second[30:])
        async with asyncio.timeout(5):
            answers = [await read_response(reader) for _ in range(2)]
    assert [a.status for a in answers] == [200, 200]
    assert seen == []


async def test_a_connection_keeps_only_the_bytes_of_the_request_being_read(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """Callbacks sent so that every read ends inside one: the connection does not keep all it
    was sent (to hand off from a request's first byte it keeps the bytes since the last
    boundary); what it keeps stays near MAX_UNSPLIT_BYTES."""
    body_size = 40_000
    requests = []
    for _ in range(40):
        body = callback_body(call_event() | {"pad": "x" * body_size})
        requests.append(request_head(headers=signed(body), length=len(body)) + body)
    stream = b"".join(requests)
    runner = make_runner(create_app(settings, redis), settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    kept: list[int] = []
    try:
        async with connected(runner.addresses[0][1]) as (reader, writer):
            cut = len(requests[0]) // 2
            for start in range(0, len(stream), len(requests[0])):  # each write ends mid-request
                writer.write(stream[start : start + cut])
                await writer.drain()
                await asyncio.sleep(0.005)
                writer.write(stream[start + cut : start + len(requests[0])])
                await writer.drain()
                await asyncio.sleep(0.005)
                front = runner.server.front  # type: ignore[union-attr]
                kept += [c.kept for c in front.connections]
            async with asyncio.timeout(10):
                answers = [await read_response(reader) for _ in requests]
    finally:
        await runner.cleanup()
    assert [a.status for a in answers] == [200] * len(requests)
    assert await stream_length(redis, keys) == len(requests)
    assert max(kept) < MAX_UNSPLIT_BYTES + 2 * len(requests[0])


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
    """Connection: close: the answer says so, the server closes, the bytes after it are unread."""
    data = callback_request({"Connection": "close"}) + callback_request()
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(data)
        async with asyncio.timeout(5):
            answer = await read_response(reader)
        assert await closed_by_server(reader, within=5)
    assert (answer.status, answer.headers["connection"]) == (200, "close")
    assert await stream_length(redis, keys) == 1


async def test_a_client_that_half_closes_still_gets_its_answer(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    """The request, then the client shuts its sending side: the answer comes, then the close."""
    async with served(settings, redis) as relay, connected(relay.port) as (reader, writer):
        writer.write(callback_request())
        writer.write_eof()
        async with asyncio.timeout(5):
            answer = await read_response(reader)
        assert await closed_by_server(reader, within=5)
    assert answer.status == 200
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


async def test_shutdown_hands_nothing_to_aiohttp_and_waits_once(
    make_settings: Callable[..., Settings], redis: Any, keys: Keys
) -> None:
    """A callback and a GET pipelined while Redis is paused, then the server is told to stop:
    the callback is answered, the GET (not begun, as aiohttp treats a request queued behind one
    at shutdown) is not handed over, and stopping takes the pause, not RELAY_SHUTDOWN_GRACE."""
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
