"""Helpers for the hostile-input tests: the app served exactly as ``relay serve`` serves it (same
runner, same limits) on a loopback port, and raw HTTP spoken over a plain socket, so a test can
send what no well-behaved client would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from relay.app import create_app
from relay.http_server import make_runner
from relay.settings import Settings
from relay.store.connect import RedisClient

CALLBACK = "/callbacks/callfire"


@dataclass(frozen=True)
class Served:
    port: int
    app: web.Application


@asynccontextmanager
async def served(
    settings: Settings, redis: RedisClient, app: web.Application | None = None, **parts: Any
) -> AsyncIterator[Served]:
    """The relay's app behind ``relay.http_server.make_runner`` on 127.0.0.1, a free port."""
    app = app if app is not None else create_app(settings, redis, **parts)
    runner = make_runner(app, settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield Served(port, app)
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


def request_head(
    path: str = CALLBACK,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    length: int | None = None,
) -> bytes:
    """A request line and headers, ending with the blank line; ``length`` adds Content-Length."""
    lines = [f"{method} {path} HTTP/1.1", "Host: relay.test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """One HTTP/1.1 response (Content-Length framed, as every relay answer is)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(int(status_line.split()[1]), headers, body)


async def exchange(
    port: int, data: bytes, *, within: float = 3.0, local_host: str | None = None
) -> RawResponse:
    """Send raw bytes on a fresh connection and read the one response."""
    local = (local_host, 0) if local_host else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
    try:
        writer.write(data)
        async with asyncio.timeout(within):
            return await read_response(reader)
    finally:
        await hang_up(writer)


async def hang_up(writer: asyncio.StreamWriter) -> None:
    """Close the client side and wait until it is closed (the server sees the hang-up at once)."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection within ``within`` seconds (data is drained)."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def keys_under(redis: RedisClient, prefix: str) -> list[bytes]:
    """Every Redis key a test's prefix owns: what "nothing written" is checked against."""
    return [key async for key in redis.scan_iter(match=f"{prefix}:*")]
