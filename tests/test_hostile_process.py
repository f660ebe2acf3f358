"""The limits hold in a real ``relay serve`` process (not only in an in-test server): a trickled
head is cut off, malformed HTTP gets CallFire's error body, failures are rate-limited, and the
process's own stderr holds nothing private."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from relay.signing import CALLFIRE_HEADER
from tests.callbacks import SECRET, callback_body, signed
from tests.hostile import closed_by_server, exchange, hang_up, request_head
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.slow

PASSWORD = "process-api-password-90ab"
BAD_SIGNATURE = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="


@dataclass(frozen=True)
class Process:
    port: int
    stderr: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(port: int, process: subprocess.Popen[bytes], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "relay serve exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("relay serve did not listen in time")


@pytest.fixture(scope="module")
def relay_serve(redis_server: PrivateRedis) -> Iterator[Process]:
    """``python -m relay serve`` on the private Redis, with short timeouts and a low limit."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("RELAY_")}
    environ.update(
        RELAY_REDIS_URL=redis_server.url,
        RELAY_KEY_PREFIX=f"t{uuid.uuid4().hex[:12]}",
        RELAY_HOST="127.0.0.1",
        RELAY_PORT=str(port),
        RELAY_CALLFIRE_SECRETS=SECRET,
        RELAY_API_CREDENTIALS=f"admin:{PASSWORD}",
        RELAY_KEEPALIVE_TIMEOUT="500ms",
        RELAY_AUTH_FAILURE_LIMIT="3",
        RELAY_LOG_FORMAT="json",
        RELAY_LOG_LEVEL="debug",
    )
    with tempfile.TemporaryDirectory(prefix="relay-serve-") as directory:
        stderr = Path(directory) / "stderr.log"
        with stderr.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "relay", "serve"], env=environ, stdout=sink, stderr=sink
            )
        try:
            wait_until_serving(port, process)
            yield Process(port, stderr)
        finally:
            process.terminate()
            process.wait(timeout=10)


async def test_trickled_head_is_cut_off_by_the_process(relay_serve: Process) -> None:
    """Headers a byte every 20 ms: relay serve closes the connection after keepalive_timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", relay_serve.port)

    async def trickle() -> None:
        for byte in request_head().removesuffix(b"\r\n\r\n") + b"\r\nX-Slow: " + b"a" * 5000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(trickle())
    closed = await closed_by_server(reader, within=3)
    sender.cancel()
    await hang_up(writer)
    assert closed


async def test_malformed_http_gets_callfire_error_and_nothing_private_is_logged(
    relay_serve: Process,
) -> None:
    """A signature header with a control character gets CallFire's 400 body without the bytes;
    bad signatures end in 429 while a good one is still accepted; the process's stderr holds no
    secret, signature or password."""
    marker = "PROCESS-PRIVATE-9c3d"
    body = callback_body(name=marker)
    malformed = request_head(headers={CALLFIRE_HEADER: marker + "\x01"}, length=0)
    bad = request_head(headers={CALLFIRE_HEADER: BAD_SIGNATURE}, length=len(body)) + body
    answer = await exchange(relay_serve.port, malformed)
    refusals = [await exchange(relay_serve.port, bad) for _ in range(4)]
    good = await exchange(relay_serve.port, request_head(headers=signed(body), length=len(body)) + body)
    logged = relay_serve.stderr.read_text()
    assert answer.status == 400
    assert orjson.loads(answer.body)["message"] == "malformed HTTP request"
    assert [r.status for r in refusals] == [401, 401, 401, 429]
    assert good.status == 200
    assert "callback refused" in logged
    for needle in (SECRET, PASSWORD, marker, BAD_SIGNATURE, signed(body)[CALLFIRE_HEADER]):
        assert needle not in logged
        assert needle.encode() not in answer.body
