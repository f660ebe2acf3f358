"""The ingest edge in real ``relay`` processes on the private Redis: a client that never reads,
the failure limit that never refuses a valid signature, clients behind trusted proxies, and the
admin surface on its own port."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from relay.embedded import free_port
from relay.signing import CALLFIRE_HEADER
from tests.api_client import AUTH
from tests.callbacks import SECRET, callback_body, signed
from tests.hostile import exchange, request_head
from tests.processes import RelayProcess
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.slow

BAD_SIGNATURE = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
MIB = 1024 * 1024


@pytest.fixture
def start(redis_server: PrivateRedis, tmp_path: Path) -> Iterator[object]:
    """Start ``relay <command>`` with settings (and stop it after the test)."""
    started: list[RelayProcess] = []

    def start_process(command: str = "serve", **settings: str) -> RelayProcess:
        values = {
            "redis_url": redis_server.url,
            "key_prefix": f"t{uuid.uuid4().hex[:12]}",
            "host": "127.0.0.1",
            "callfire_secrets": SECRET,
            "api_credentials": "admin:secret-pw",
            "log_level": "debug",
            **settings,
        }
        process = RelayProcess(command, tmp_path / f"{command}-{len(started)}.log", **values)
        started.append(process)
        return process.start()

    yield start_process
    for process in started:
        process.kill()


def signed_request(extra: dict[str, str] | None = None) -> bytes:
    body = callback_body()
    return request_head(headers={**signed(body), **(extra or {})}, length=len(body)) + body


def badly_signed_request(extra: dict[str, str] | None = None) -> bytes:
    body = callback_body()
    headers = {CALLFIRE_HEADER: BAD_SIGNATURE, **(extra or {})}
    return request_head(headers=headers, length=len(body)) + body


def rss(process: RelayProcess) -> int:
    """The process's resident memory, in bytes (Linux /proc)."""
    assert process.proc is not None
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_what_it_takes(sock: socket.socket, data: bytes) -> int:
    """Send as much of ``data`` as the connection takes now, without blocking; bytes sent."""
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


def test_a_client_that_never_reads_leaves_memory_bounded_and_no_traceback(start: object) -> None:
    """A client that never reads pipelines badly signed callbacks (the failure limit off: each
    answer outweighs its request) with a GET after every sixteen, until the server takes no more
    (its send buffer full) and three seconds beyond: the server's RSS grows by less than 50 MiB
    (aiohttp's flow control holds), and when the client finally reads and hangs up, no
    traceback or error line is logged."""
    relay: RelayProcess = start(keepalive_timeout="60s", auth_failure_limit="0", log_level="info")  # type: ignore[operator]
    bad = request_head(headers={CALLFIRE_HEADER: BAD_SIGNATURE}, length=2) + b"{}"
    for _ in range(20):  # warm up: first allocations are not growth
        with socket.create_connection(("127.0.0.1", relay.port)) as warm:
            warm.sendall(bad)
            warm.recv(4096)
    before = rss(relay)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.connect(("127.0.0.1", relay.port))
    sock.setblocking(False)
    mixed = bad * 16 + request_head("/healthz", method="GET")
    peak, sent, started = before, 0, time.monotonic()
    taken_at = started
    while time.monotonic() - taken_at < 3.0 and time.monotonic() - started < 30:
        took = send_what_it_takes(sock, mixed)
        if took:
            sent, taken_at = sent + took, time.monotonic()
        peak = max(peak, rss(relay))
        time.sleep(0.001)
    refused_more = time.monotonic() - started < 30
    sock.setblocking(True)
    sock.settimeout(0.5)
    received, drain_until = 0, time.monotonic() + 10
    with contextlib.suppress(TimeoutError, ConnectionError):
        while time.monotonic() < drain_until:  # read at last, for a while, then hang up
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    sock.close()
    time.sleep(0.5)
    assert refused_more, f"the server kept reading for 30 s ({sent} bytes)"
    assert received > 1_000_000  # the server's send buffer was full
    assert peak - before < 50 * MIB, f"RSS grew by {(peak - before) / MIB:.1f} MiB ({sent} bytes sent)"
    log = relay.log()
    assert "Traceback" not in log
    assert '"level":"error"' not in log and '"level":"critical"' not in log


async def test_past_50_bad_signatures_a_valid_callback_is_accepted_a_bad_one_429(start: object) -> None:
    """The failure limit (default 20) never refuses a valid signature: after 50 bad ones from an
    address, its signed callback is 200, its next bad one 429 with Retry-After."""
    relay: RelayProcess = start()  # type: ignore[operator]
    statuses = [(await exchange(relay.port, badly_signed_request())).status for _ in range(50)]
    good = await exchange(relay.port, signed_request())
    bad = await exchange(relay.port, badly_signed_request())
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    assert good.status == 200 and orjson.loads(good.body)["status"] == "accepted"
    assert bad.status == 429 and int(bad.headers["retry-after"]) >= 1


async def test_forwarded_clients_of_a_trusted_proxy_are_limited_apart(start: object) -> None:
    """Behind a trusted proxy (127.0.0.1), clients named by X-Forwarded-For count apart: one past
    its limit gets 429, the other still 401; its valid callback is still accepted."""
    relay: RelayProcess = start(trusted_proxies="127.0.0.1/32", auth_failure_limit="3")  # type: ignore[operator]
    first = {"X-Forwarded-For": "198.51.100.7, 203.0.113.1"}
    second = {"X-Forwarded-For": "203.0.113.2"}
    statuses = [(await exchange(relay.port, badly_signed_request(first))).status for _ in range(4)]
    other = await exchange(relay.port, badly_signed_request(second))
    valid = await exchange(relay.port, signed_request(first))
    assert statuses == [401, 401, 401, 429]
    assert other.status == 401
    assert valid.status == 200


async def test_the_forwarded_for_of_an_untrusted_peer_is_ignored(start: object) -> None:
    """A peer not in RELAY_TRUSTED_PROXIES (127.0.0.2) cannot pick its address: whatever its
    X-Forwarded-For says, its failures count under its own address."""
    relay: RelayProcess = start(trusted_proxies="127.0.0.1/32", auth_failure_limit="3")  # type: ignore[operator]
    statuses = []
    for n in range(4):
        forged = {"X-Forwarded-For": f"203.0.113.{10 + n}"}
        answer = await exchange(relay.port, badly_signed_request(forged), local_host="127.0.0.2")
        statuses.append(answer.status)
    trusted = await exchange(relay.port, badly_signed_request({"X-Forwarded-For": "203.0.113.99"}))
    assert statuses == [401, 401, 401, 429]
    assert trusted.status == 401


ADMIN_PATHS = [
    request_head("/v2/webhooks", AUTH, method="GET"),
    request_head("/metrics", method="GET"),
    request_head("/openapi.json", method="GET"),
    request_head("/v2/api-docs/swagger.json", method="GET"),
]


async def test_with_an_admin_port_the_public_port_serves_only_callbacks_and_probes(start: object) -> None:
    """RELAY_ADMIN_PORT: /v2/webhooks, /metrics, /openapi.json and CallFire's Swagger are 404
    (CallFire's body) on RELAY_PORT and 200 on the admin port; callbacks and probes stay on
    RELAY_PORT only."""
    admin_port = str(free_port())
    relay: RelayProcess = start(admin_port=admin_port)  # type: ignore[operator]
    public = [await exchange(relay.port, request) for request in ADMIN_PATHS]
    admin = [await exchange(int(admin_port), request) for request in ADMIN_PATHS]
    callback = await exchange(relay.port, signed_request())
    probes = [await exchange(relay.port, request_head(p, method="GET")) for p in ("/healthz", "/readyz")]
    callback_on_admin = await exchange(int(admin_port), signed_request())
    assert [a.status for a in public] == [404] * len(ADMIN_PATHS)
    assert all(orjson.loads(a.body)["httpStatusCode"] == 404 for a in public)
    assert [a.status for a in admin] == [200] * len(ADMIN_PATHS)
    assert callback.status == 200 and [p.status for p in probes] == [200, 200]
    assert callback_on_admin.status == 404


async def test_relay_work_serves_probes_on_its_port_and_metrics_on_the_admin_port(start: object) -> None:
    """``relay work`` with RELAY_ADMIN_PORT: /healthz and /readyz on RELAY_PORT, /metrics only on
    the admin port."""
    admin_port = free_port()
    relay: RelayProcess = start("work", admin_port=str(admin_port))  # type: ignore[operator]
    probe = await exchange(relay.port, request_head("/readyz", method="GET"))
    metrics_public = await exchange(relay.port, request_head("/metrics", method="GET"))
    metrics_admin = await exchange(admin_port, request_head("/metrics", method="GET"))
    assert probe.status == 200
    assert metrics_public.status == 404
    assert metrics_admin.status == 200 and b"relay_" in metrics_admin.body
