"""The relay as its users run it: real processes, the embedded Redis, signals, one-line errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from relay.embedded import free_port
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.processes import RelayProcess, relay_env
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.slow


def post(base_url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(base_url + "/callbacks/callfire", data=body, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
        return int(resp.status)


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    """No RELAY_CALLFIRE_SECRETS: exit non-zero with one line naming the setting."""
    result = subprocess.run(
        [sys.executable, "-m", "relay", "serve"],
        env=relay_env(redis_url="redis://127.0.0.1:1/0"),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "RELAY_CALLFIRE_SECRETS" in lines[0]


def test_bad_setting_is_one_line_naming_it() -> None:
    """A malformed setting stops the start with a line naming it, and exit code 2."""
    result = subprocess.run(
        [sys.executable, "-m", "relay", "serve"],
        env=relay_env(port="not-a-port", callfire_secrets="x"),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "RELAY_PORT" in lines[0]


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"host": "nosuch.invalid"},
            "relay: cannot listen at RELAY_HOST=nosuch.invalid, RELAY_PORT={free}: RELAY_HOST names no "
            "address this machine resolves",
        ),
        (
            {"port": "{taken}"},
            "relay: cannot listen at RELAY_HOST=127.0.0.1, RELAY_PORT={taken}: port {taken} is already "
            "in use",
        ),
        (
            {"admin_port": "{taken}"},
            "relay: cannot listen at RELAY_HOST=127.0.0.1, RELAY_ADMIN_PORT={taken}: port {taken} is already "
            "in use",
        ),
        (
            {"admin_port": "{free2}", "admin_host": "192.0.2.1"},
            "relay: cannot listen at RELAY_ADMIN_HOST=192.0.2.1, RELAY_ADMIN_PORT={free2}: 192.0.2.1 is not "
            "an address of this machine",
        ),
    ],
)
def test_a_port_it_cannot_listen_on_is_one_line_naming_the_settings(
    redis_server: PrivateRedis, settings: dict[str, str], line: str
) -> None:
    """A host that does not resolve or is not this machine's, or a port in use: exit 1, and the
    last line names the settings and says why, with no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"taken": str(taken.getsockname()[1]), "free": str(free_port()), "free2": str(free_port())}
        values = {"port": ports["free"]} | {k: v.format(**ports) for k, v in settings.items()}
        result = subprocess.run(
            [sys.executable, "-m", "relay", "serve"],
            env=relay_env(redis_url=redis_server.url, callfire_secrets="x", **values),
            capture_output=True,
            timeout=30,
            check=False,
        )
    err = result.stderr.decode()
    assert result.returncode == 1
    assert err.strip().splitlines()[-1].startswith(line.format(**ports))
    assert "Traceback" not in err


def test_embedded_redis_keeps_callbacks_across_restarts(
    tmp_path: Path, processes: list[RelayProcess]
) -> None:
    """Without RELAY_REDIS_URL: an embedded Redis with AOF; SIGTERM exits 0; events survive."""
    settings = {"data_dir": str(tmp_path / "data"), "callfire_secrets": SECRET}
    first = RelayProcess("serve", tmp_path / "serve.log", **settings)
    processes.append(first)
    first.start()
    body = callback_body(call_event(call_id=7420017300281076000))
    assert post(first.base_url, body, signed(body)) == 200
    assert first.terminate() == 0
    assert "embedded redis started" in first.log()

    second = RelayProcess("serve", tmp_path / "serve2.log", **settings)
    processes.append(second)
    second.start()
    tail = subprocess.run(
        [sys.executable, "-m", "relay", "events", "tail", "-n", "5"],
        env=relay_env(**settings),
        capture_output=True,
        timeout=30,
        check=True,
    )
    [line] = tail.stdout.decode().strip().splitlines()
    shown = json.loads(line)
    assert shown["resource"] == "OutboundCall"
    assert "7420017300281076000" in shown["event_json"]
    assert second.terminate() == 0


def test_a_stalled_worker_exits_3_after_logging_it(tmp_path: Path, processes: list[RelayProcess]) -> None:
    """A delivery loop stuck past RELAY_STALL_TIMEOUT: the stall is logged and the process exits 3."""
    redis = PrivateRedis()
    redis.start()
    try:
        settings = {"redis_url": redis.url, "stall_timeout": "1s", "shutdown_grace": "1s"}
        worker = RelayProcess("work", tmp_path / "work.log", **settings)
        processes.append(worker)
        worker.start()
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)
        try:
            assert worker.proc is not None
            code = worker.proc.wait(timeout=60)
        finally:
            redis.process.send_signal(signal.SIGCONT)
    finally:
        redis.close()
    assert code == 3
    stalls = [json.loads(line) for line in worker.log().splitlines() if "relay stalled" in line]
    assert len(stalls) == 1
    assert stalls[0]["level"] == "error"
    assert "delivery loop(s) stalled" in stalls[0]["problems"]["delivery"]


def test_start_without_secret_keys_warns(
    tmp_path: Path, processes: list[RelayProcess], redis_server: PrivateRedis, prefix: str
) -> None:
    """No RELAY_SECRET_KEYS: the process starts, and says at start that secrets stay in plain text."""
    settings = {"redis_url": redis_server.url, "key_prefix": prefix, "callfire_secrets": SECRET}
    proc = RelayProcess("serve", tmp_path / "serve.log", **settings)
    processes.append(proc)
    proc.start()
    assert proc.terminate() == 0
    warnings = [json.loads(line) for line in proc.log().splitlines() if "RELAY_SECRET_KEYS" in line]
    assert [w["level"] for w in warnings] == ["warning"]
    assert "stored in plain text" in warnings[0]["event"]
