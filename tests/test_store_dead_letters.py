"""Dead letters: what a letter keeps, replay and purge, and the `relay dead-letters` command."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as sync_redis
import structlog

from relay.cli import main
from relay.cli.deadletters import progress_bar
from relay.delivery.message import Delivery
from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.connect import RedisClient
from relay.store.dead_letters import DeadLetters, letter_fields, parse_letter
from tests.redis_server import PrivateRedis


def event(n: int = 0) -> StreamEvent:
    return StreamEvent(
        resource="OutboundCall",
        event="Finished",
        event_key="finished",
        cf_webhook_id=1001,
        cf_webhook_name="cf",
        timestamp=5,
        received_at=6,
        callback=f"{n:064x}",
        index=0,
        json=b'{"resource":{"id":7420017300281076000}}',
    )


def exhausted(webhook_id: int = 7, n: int = 0) -> dict[str, object]:
    return letter_fields(
        kind="exhausted", reason="gave up after 3 attempts, last: HTTP 503", at=9,
        webhook_id=webhook_id, attempts=3, last_status=503, event=event(n),
    )  # fmt: skip


def as_stored(fields: dict[str, object]) -> dict[bytes, bytes]:
    return {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()}


def test_letter_keeps_reason_attempts_status_and_event() -> None:
    """Everything a letter is written with reads back, the event's JSON exact."""
    letter = parse_letter(b"1-0", as_stored(exhausted()))
    assert (letter.kind, letter.webhook_id, letter.attempts, letter.last_status) == ("exhausted", 7, 3, 503)
    assert letter.event == event() and letter.replayable


def test_poison_letter_keeps_the_raw_fields_and_is_not_replayable() -> None:
    """A poison entry is kept as its raw fields, marked poison."""
    fields = letter_fields(kind="poison", reason="unreadable", at=1, raw={b"junk": b"\xff"})
    letter = parse_letter(b"2-0", as_stored(fields))
    assert letter.kind == "poison" and letter.event is None and not letter.replayable
    assert "junk" in letter.raw


async def test_replay_puts_a_first_attempt_back_and_drops_the_letter(redis: RedisClient, keys: Keys) -> None:
    """Replay appends attempt 1 to the event's partition's deliveries stream and removes the letter."""
    store = DeadLetters(redis, keys)
    letter_id = await store.add(exhausted())
    letter = await store.get(letter_id)
    assert letter is not None and await store.replay(letter)
    partition = keys.partition_of(bytes.fromhex(event().callback))
    ((_, fields),) = await redis.xrange(keys.deliveries(partition))
    assert Delivery.from_fields(fields) == Delivery(7, 1, event())
    assert await store.count() == 0


async def test_scan_filters_by_webhook_across_pages(redis: RedisClient, keys: Keys) -> None:
    """Scanning one webhook's letters reads every page and keeps only that webhook's."""
    store = DeadLetters(redis, keys)
    for n in range(5):
        await store.add(exhausted(webhook_id=7 if n % 2 == 0 else 8, n=n))
    found = [letter async for letter in store.scan(webhook_id=7, batch=2)]
    assert [letter.event.callback for letter in found if letter.event] == [f"{n:064x}" for n in (0, 2, 4)]


def test_progress_bar() -> None:
    """The bar fills in proportion and counts."""
    assert progress_bar(5, 10, width=10) == "[#####.....]  5/10"


# --- the command -----------------------------------------------------------------------------


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
