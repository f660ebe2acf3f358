"""``relay serve --reuse-port``: several processes on one port (SO_REUSEPORT), each answering."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay.embedded import free_port
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.processes import RelayProcess
from tests.redis_server import PrivateRedis
from tests.test_processes import post

pytestmark = pytest.mark.slow

CALLS = 400
"""Callbacks posted at most, each on a new connection (a new source port), until both processes
have taken one: with the kernel's hash spreading them, all 400 on one process is ~2^-400."""


def accepted(proc: RelayProcess) -> int:
    return proc.log().count('"callback accepted"')


def test_two_serve_processes_share_one_port_and_both_answer(
    tmp_path: Path, processes: list[RelayProcess], redis_server: PrivateRedis, prefix: str
) -> None:
    """Both bind RELAY_PORT with --reuse-port; callbacks on new connections reach each of them.
    A third process without the flag cannot bind the port they share."""
    port = str(free_port())
    settings = {"redis_url": redis_server.url, "key_prefix": prefix, "callfire_secrets": SECRET, "port": port}
    first, second = (
        RelayProcess("serve --reuse-port", tmp_path / f"serve-{n}.log", **settings) for n in (1, 2)
    )
    processes += [first, second]
    first.start()
    second.start(wait_ready=False)
    deadline = time.monotonic() + 30
    while '"relay started"' not in second.log():
        assert second.proc is not None and second.proc.poll() is None, second.log()
        assert time.monotonic() < deadline, second.log()
        time.sleep(0.05)

    for n in range(CALLS):
        body = callback_body(call_event(call_id=7420017300281076000 + n))
        assert post(first.base_url, body, signed(body)) == 200
        if accepted(first) and accepted(second):
            break
    assert accepted(first) > 0 and accepted(second) > 0
    assert accepted(first) + accepted(second) == n + 1

    without = RelayProcess("serve", tmp_path / "serve-plain.log", **settings)
    processes.append(without)
    without.start(wait_ready=False)
    assert without.proc is not None
    assert without.proc.wait(timeout=30) != 0
    assert first.terminate() == 0 and second.terminate() == 0
