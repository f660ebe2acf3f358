"""`relay dead-letters list|show|replay|purge`, as an operator runs it against a private Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as sync_redis
import structlog

from relay.cli import main
from relay.cli.progress import progress_bar
from relay.keys import Keys
from tests.redis_server import PrivateRedis
from tests.test_store_dead_letters import exhausted


def test_progress_bar() -> None:
    """The bar fills in proportion and counts."""
    assert progress_bar(5, 10, width=10) == "[#####.....]  5/10"


@pytest.fixture
def seeded(
    redis_server: PrivateRedis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sync_redis.Redis]:
    """The CLI pointed at this test's keys (it reads its settings from the environment)."""
    monkeypatch.setenv("RELAY_REDIS_URL", redis_server.url)
    monkeypatch.setenv("RELAY_KEY_PREFIX", prefix)
    monkeypatch.setenv("RELAY_PARTITIONS", "2")
    monkeypatch.setenv("RELAY_LOG_FORMAT", "json")
    logging = structlog.get_config()  # the CLI points structlog at this test's captured stderr
    client = sync_redis.Redis.from_url(redis_server.url)
    yield client
    client.close()
    structlog.configure(**logging)


def add(client: sync_redis.Redis, prefix: str, fields: dict[str, object]) -> str:
    return bytes(client.xadd(Keys(prefix, 2).dead_letters, fields)).decode()  # type: ignore[arg-type]


def test_list_shows_id_webhook_reason_and_last_status(
    seeded: sync_redis.Redis, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list`: one line per letter with its id, webhook id, reason and last status."""
    letter_id = add(seeded, prefix, exhausted())
    assert main(["dead-letters", "list"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(letter_id)
    for part in (" 7 ", "503", "gave up after 3 attempts"):
        assert part in line


def test_show_prints_the_event(
    seeded: sync_redis.Redis, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show ID` prints the whole letter, the event's big id intact."""
    letter_id = add(seeded, prefix, exhausted())
    assert main(["dead-letters", "show", letter_id]) == 0
    assert "7420017300281076000" in capsys.readouterr().out


def test_replay_by_webhook_leaves_the_others(
    seeded: sync_redis.Redis, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --webhook 7` replays that webhook's letters only."""
    add(seeded, prefix, exhausted(webhook_id=7))
    kept = add(seeded, prefix, exhausted(webhook_id=8, n=1))
    assert main(["dead-letters", "replay", "--webhook", "7"]) == 0
    assert "replayed 1" in capsys.readouterr().out
    assert [i.decode() for i, _ in seeded.xrange(Keys(prefix, 2).dead_letters)] == [kept]  # type: ignore[union-attr]


def test_large_replay_draws_a_progress_bar(
    seeded: sync_redis.Redis, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --all` of many letters draws a progress bar on stderr, stdout keeps the summary."""
    for n in range(25):
        add(seeded, prefix, exhausted(n=n))
    assert main(["dead-letters", "replay", "--all"]) == 0
    out = capsys.readouterr()
    assert "25/25" in out.err and "#" * 30 in out.err
    assert out.out.strip() == "replayed 25 dead letters"


def test_purge_by_id(seeded: sync_redis.Redis, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`purge ID` deletes that letter."""
    letter_id = add(seeded, prefix, exhausted())
    assert main(["dead-letters", "purge", letter_id]) == 0
    assert seeded.xlen(Keys(prefix, 2).dead_letters) == 0


def test_unknown_id_is_an_error(seeded: sync_redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """Naming a letter that does not exist exits 1 saying so."""
    assert main(["dead-letters", "replay", "1-1"]) == 1
    assert "no such dead letter: 1-1" in capsys.readouterr().err


def test_replay_needs_a_selection(seeded: sync_redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """`replay` alone refuses rather than replaying everything."""
    assert main(["dead-letters", "replay"]) == 1
    assert "--all" in capsys.readouterr().err
