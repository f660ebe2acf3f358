"""The Redis every data command reads: RELAY_REDIS_URL, else the embedded Redis that a running
relay keeps on RELAY_DATA_DIR; never a new, empty one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.cli import main
from relay.embedded import EmbeddedRedis
from tests.logstate import saved_logging
from tests.redis_server import PrivateRedis

COMMANDS = [("dead-letters", "list"), ("webhooks", "list"), ("events", "tail")]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A shell with no RELAY_REDIS_URL and its own RELAY_DATA_DIR."""
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    monkeypatch.setenv("RELAY_DATA_DIR", str(path))
    monkeypatch.setenv("RELAY_LOG_FORMAT", "json")
    with saved_logging():  # the CLI configures logging for the process: put it back after
        yield path


@pytest.fixture
def running(data_dir: Path) -> Iterator[EmbeddedRedis]:
    """The embedded Redis that `relay run` starts on the data dir, as it starts it."""
    embedded = EmbeddedRedis(data_dir)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.mark.parametrize("command", COMMANDS)
def test_without_a_running_relay_a_command_exits_1_in_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    """No relay runs on the data dir: exit 1, one line saying so and how to start one, no Redis started."""
    assert main(list(command)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert f"no relay is running on RELAY_DATA_DIR={data_dir}" in err
    assert "`relay run`" in err
    assert not data_dir.exists()


def test_commands_reach_the_embedded_redis_a_running_relay_uses(
    running: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    """What one command writes to the running relay's Redis, the next one reads from it."""
    create = ("webhooks", "create", "--resource", "OutboundCall", "--event", "Finished")
    assert main([*create, "--callback", "http://127.0.0.1:9/h", "--name", "ops"]) == 0
    capsys.readouterr()
    assert main(["webhooks", "list", "--json"]) == 0
    assert '"name":"ops"' in capsys.readouterr().out.replace(" ", "")
    assert main(["dead-letters", "list"]) == 0
    assert "0 shown, 0 dead letters in all" in capsys.readouterr().err


def test_a_port_file_naming_another_redis_is_not_trusted(
    data_dir: Path, redis_server: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port file left behind, whose port now belongs to a Redis of another directory, is ignored."""
    data_dir.mkdir()
    (data_dir / "redis.port").write_text(str(redis_server.port))
    assert main(["webhooks", "list"]) == 1
    assert "no relay is running" in capsys.readouterr().err
