"""Oversized, deeply nested, too many events, compressed: refused early, nothing written to Redis."""

from __future__ import annotations

import asyncio
import resource
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from relay import selector
from relay.app import create_app
from relay.ingest.parsing import CallbackError, parse_callback
from relay.settings import Settings
from tests.callbacks import callback_body, signed
from tests.hostile import exchange, hang_up, keys_under, read_response, request_head, served


def assert_callfire_error(body: bytes, status: int) -> None:
    parsed = orjson.loads(body)
    assert parsed["httpStatusCode"] == status
    assert set(parsed) == {"httpStatusCode", "internalCode", "message", "developerMessage", "helpLink"}


def gzip_bomb() -> bytes:
    """About 1 MB of gzip that expands to 1 GiB (16 identical members of 64 MiB of zeros)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    member = b"".join(squeeze.compress(zeros) for _ in range(64)) + squeeze.flush()
    return member * 16


async def test_oversized_content_length_is_refused_before_the_body_is_sent(
    make_settings: Callable[..., Settings], redis: Any, prefix: str
) -> None:
    """A Content-Length over max_body_bytes gets 413 while the client has sent only the head."""
    settings = make_settings(max_body_bytes=4096)
    async with served(settings, redis) as server:
        response = await exchange(server.port, request_head(length=4097))
    assert response.status == 413
    assert_callfire_error(response.body, 413)
    assert await keys_under(redis, prefix) == []


async def test_oversized_streamed_body_without_length_is_refused(
    make_settings: Callable[..., Settings], redis: Any, prefix: str
) -> None:
    """A chunked body that grows past max_body_bytes gets 413 once the limit is crossed."""
    settings = make_settings(max_body_bytes=4096)
    chunk = b"x" * 1024
    async with served(settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_head(headers={"Transfer-Encoding": "chunked"}))
        for _ in range(8):  # 8 KiB, twice the limit, never terminated
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        async with asyncio.timeout(3):
            response = await read_response(reader)
        await hang_up(writer)
    assert response.status == 413
    assert_callfire_error(response.body, 413)
    assert await keys_under(redis, prefix) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        b'{"resource": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b', "events": []}',
    ],
    ids=["inside-events", "beside-events"],
)
async def test_deeply_nested_json_is_400_not_a_500(
    client_settings: Settings, redis: Any, prefix: str, body: bytes
) -> None:
    """Signed JSON nested 50,000 to 100,000 deep gets 400, not a RecursionError 500."""
    async with served(client_settings, redis) as server:
        response = await exchange(server.port, request_head(headers=signed(body), length=len(body)) + body)
    assert response.status == 400
    assert orjson.loads(response.body)["message"] == "the body is nested too deeply"
    assert await keys_under(redis, prefix) == []


def test_an_event_the_listener_accepts_can_always_be_trimmed() -> None:
    """The most deeply nested event parse_callback accepts can still be trimmed by a webhook's
    `fields` selector in delivery."""
    accepted = None
    for depth in range(1, 5000):
        event = b'{"resourceType":"A","eventType":"B","resource":' + b"[" * depth + b"]" * depth + b"}"
        try:
            accepted = parse_callback(b'{"events":[' + event + b"]}")
        except CallbackError:
            break
    assert accepted is not None
    selector.trim("resource", accepted.events[0].text)


async def test_too_many_events_is_413(
    make_settings: Callable[..., Settings], redis: Any, prefix: str
) -> None:
    """A signed callback carrying one event more than max_events_per_callback gets 413."""
    settings = make_settings(max_events_per_callback=50)
    event = {"resourceType": "OutboundCall", "eventType": "Finished", "resource": {"id": 1}}
    body = callback_body(*[event] * 51)
    async with served(settings, redis) as server:
        response = await exchange(server.port, request_head(headers=signed(body), length=len(body)) + body)
    assert response.status == 413
    assert "at most 50 events" in orjson.loads(response.body)["message"]
    assert await keys_under(redis, prefix) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "GZIP", "identity, gzip"])
async def test_compressed_body_is_refused_before_the_body_is_sent(
    client_settings: Settings, redis: Any, prefix: str, encoding: str
) -> None:
    """Any Content-Encoding but identity gets 415 while the client has sent only the head."""
    async with served(client_settings, redis) as server:
        head = request_head(headers={"Content-Encoding": encoding}, length=1_000_000)
        response = await exchange(server.port, head)
    assert response.status == 415
    assert_callfire_error(response.body, 415)
    assert await keys_under(redis, prefix) == []


async def test_gzip_bomb_is_refused_with_bounded_memory(
    client_settings: Settings, redis: Any, prefix: str
) -> None:
    """A 1 MB gzip body that expands to 1 GiB is sent whole: 415, and peak memory grows < 64 MiB."""
    bomb = gzip_bomb()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    async with served(client_settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = request_head(headers={"Content-Encoding": "gzip", **signed(bomb)}, length=len(bomb))
        writer.write(head + bomb)
        async with asyncio.timeout(5):
            response = await read_response(reader)
            await writer.drain()
        await hang_up(writer)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert response.status == 415
    assert grown_kib < 64 * 1024
    assert await keys_under(redis, prefix) == []


async def test_no_route_ever_decompresses_a_request_body(client_settings: Settings, redis: Any) -> None:
    """The server hands every handler the bytes as sent: a gzip body stays its compressed size."""

    async def body_length(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    app = create_app(client_settings, redis)
    app.router.add_post("/probe", body_length)
    compressed = zlib.compress(bytes(10_000_000), wbits=31)
    async with served(client_settings, redis, app=app) as server:
        head = request_head("/probe", {"Content-Encoding": "gzip"}, length=len(compressed))
        response = await exchange(server.port, head + compressed)
    assert response.status == 200
    assert int(response.body) == len(compressed)


@pytest.mark.parametrize(
    "head",
    [
        request_head("/callbacks/callfire?" + "a" * 9000, length=0),
        request_head(headers={"X-Long": "a" * 9000}, length=0),
        request_head(headers={f"X-H{n}": "v" for n in range(65)}, length=0),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
    ],
    ids=["request-line", "header", "header-count", "tls-on-plain-port"],
)
async def test_malformed_head_gets_400_with_callfire_body(
    client_settings: Settings, redis: Any, prefix: str, head: bytes
) -> None:
    """A head past aiohttp's limits (8190-byte line or header, 64 headers) or not HTTP at all
    gets 400 with CallFire's error body and a fixed message, not aiohttp's plain text; counted."""
    before = REGISTRY.get_sample_value("relay_http_malformed_total") or 0.0
    async with served(client_settings, redis) as server:
        response = await exchange(server.port, head)
    assert response.status == 400
    assert orjson.loads(response.body)["message"] == "malformed HTTP request"
    assert REGISTRY.get_sample_value("relay_http_malformed_total") == before + 1
    assert await keys_under(redis, prefix) == []


@pytest.fixture
def client_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()
