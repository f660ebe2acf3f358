"""Slow and idle clients: heads and bodies trickled byte by byte are cut off, idle connections
are closed, and hundreds of them do not stop the listener answering."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from relay.settings import Settings
from tests.callbacks import callback_body, signed
from tests.hostile import (
    closed_by_server,
    exchange,
    hang_up,
    keys_under,
    read_response,
    request_head,
    served,
)

DEADLINE = 0.5
"""keepalive_timeout and read_timeout in these tests, in seconds."""


@pytest.fixture
def slow_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(keepalive_timeout=DEADLINE, read_timeout=DEADLINE)


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.02) -> None:
    """Write ``data`` one byte at a time until it is all sent or the server hangs up."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)


async def test_head_trickled_byte_by_byte_is_cut_off(slow_settings: Settings, redis: Any) -> None:
    """Headers sent a byte every 20 ms never complete: the server closes after keepalive_timeout."""
    endless_head = request_head().removesuffix(b"\r\n\r\n") + b"\r\nX-Slow: " + b"a" * 5000
    async with served(slow_settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        sender = asyncio.create_task(trickle(writer, endless_head))
        closed = await closed_by_server(reader, within=3)
        elapsed = time.monotonic() - started
        sender.cancel()
        await hang_up(writer)
    assert closed
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 1.0


async def test_head_trickled_on_a_kept_alive_connection_is_cut_off(
    slow_settings: Settings, redis: Any
) -> None:
    """After one answered request, a second head trickled on the same connection is cut off too."""
    async with served(slow_settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_head("/healthz", method="GET"))
        first = await read_response(reader)
        sender = asyncio.create_task(trickle(writer, request_head("/healthz", method="GET") * 50))
        closed = await closed_by_server(reader, within=3)
        sender.cancel()
        await hang_up(writer)
    assert first.status == 200
    assert closed


async def test_body_trickled_byte_by_byte_gets_408(slow_settings: Settings, redis: Any, prefix: str) -> None:
    """A signed callback whose body arrives a byte every 20 ms gets 408 after read_timeout."""
    body = callback_body()
    async with served(slow_settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_head(headers=signed(body), length=len(body)))
        sender = asyncio.create_task(trickle(writer, body))
        async with asyncio.timeout(3):
            response = await read_response(reader)
        sender.cancel()
        await hang_up(writer)
    assert response.status == 408
    assert await keys_under(redis, prefix) == []


async def test_api_body_trickled_byte_by_byte_gets_408(slow_settings: Settings, redis: Any) -> None:
    """An authenticated POST /v2/webhooks whose body trickles gets 408 after read_timeout too."""
    auth = "Basic " + base64.b64encode(b"admin:secret-pw").decode()
    body = b'{"name": "slow", "resource": "OutboundCall", "events": ["Finished"]}'
    async with served(slow_settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_head("/v2/webhooks", {"Authorization": auth}, length=len(body)))
        sender = asyncio.create_task(trickle(writer, body))
        async with asyncio.timeout(3):
            response = await read_response(reader)
        sender.cancel()
        await hang_up(writer)
    assert response.status == 408


async def test_idle_keep_alive_connection_is_closed(slow_settings: Settings, redis: Any) -> None:
    """A kept-alive connection left idle after its answer is closed after keepalive_timeout."""
    async with served(slow_settings, redis) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_head("/healthz", method="GET"))
        response = await read_response(reader)
        assert response.headers.get("connection", "keep-alive").lower() != "close"
        closed = await closed_by_server(reader, within=DEADLINE + 1.0)
        await hang_up(writer)
    assert closed


async def test_many_idle_connections_do_not_stop_the_listener(slow_settings: Settings, redis: Any) -> None:
    """With 300 idle or half-sent connections open, a signed callback still gets 200 at once;
    then the server closes all 300 by itself."""
    async with served(slow_settings, redis) as server:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(300)]
        for _, writer in idle[::2]:
            writer.write(b"POST /callbacks/callfire HTTP/1.1\r\nHost: relay.test\r\nX-Half: ")
        body = callback_body()
        started = time.monotonic()
        response = await exchange(server.port, request_head(headers=signed(body), length=len(body)) + body)
        answered_in = time.monotonic() - started
        closed = await asyncio.gather(*(closed_by_server(r, within=DEADLINE + 2.0) for r, _ in idle))
        for _, writer in idle:
            await hang_up(writer)
    assert response.status == 200
    assert answered_in < 1.0
    assert all(closed)
