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


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["events", "tail", "-n", "0"], "argument -n/--count: must be at least 1, not 0"),
        (["events", "tail", "-n", "x"], "argument -n/--count: not a whole number: 'x'"),
        (["dead-letters", "list", "-n", "-1"], "argument -n/--limit: must be at least 0, not -1"),
        (["webhooks", "list", "--offset", "-5"], "argument --offset: must be at least 0, not -5"),
        (["webhooks", "list", "-n", "1001"], "argument -n/--limit: must be from 0 to 1000, not 1001"),
        (["receive", "--secret", "s", "--port", "99999"], "must be from 1 to 65535, not 99999"),
        (["check", "--timeout", "0"], "argument --timeout: must be above 0, not 0"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error_before_redis(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """A count, offset, port or timeout out of range exits 2 with argparse's one line naming the
    option (it reached Redis before: a library's error, or a silent wrong answer)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
    assert not data_dir.exists()
