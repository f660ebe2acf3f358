"""`relay check`: the judgements (pure) and the command against a real Redis."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import redis as sync_redis
from cryptography.fernet import Fernet

from relay.cli import main
from relay.cli.check_rules import (
    Finding,
    Level,
    ServerFacts,
    exit_code,
    retention_finding,
    server_findings,
    settings_findings,
    spread_finding,
    strict_summary,
)
from relay.keys import Keys
from relay.settings import Settings
from tests.logstate import saved_logging
from tests.redis_server import PrivateRedis


def facts(**changes: object) -> ServerFacts:
    values: dict[str, object] = {
        "name": "redis",
        "version": (7, 2, 4),
        "aof": True,
        "appendfsync": "everysec",
        "save": "",
        "policy": "noeviction",
        "replicas": 0,
    }
    return ServerFacts(**(values | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "level", "words"),
    [
        ({}, "ok", "AOF on (appendfsync everysec)"),
        ({"aof": False, "save": ""}, "warning", "persistence is off"),
        ({"aof": False, "save": "3600 1"}, "warning", "RDB snapshots only"),
        ({"aof": False, "save": None}, "warning", "cannot be read"),
        ({"appendfsync": "no"}, "warning", "appendfsync no"),
        ({"policy": "allkeys-lru"}, "warning", "maxmemory-policy allkeys-lru evicts"),
        ({"version": (6, 0, 9)}, "error", "too old"),
    ],
)
def test_server_facts_are_judged(changes: dict[str, object], level: str, words: str) -> None:
    """What can lose accepted callbacks is called out; a fit server gets an ok."""
    found = server_findings(facts(**changes), Settings())
    assert any(f.level == level and words in f.text for f in found), found


def test_too_few_replicas_for_min_replicas_is_an_error() -> None:
    """RELAY_REDIS_MIN_REPLICAS above the connected replicas would refuse every callback."""
    found = server_findings(facts(replicas=1), Settings(redis_min_replicas=2))
    assert any(f.level == "error" and "RELAY_REDIS_MIN_REPLICAS=2" in f.text for f in found)


def test_settings_findings_name_typos_and_risky_choices() -> None:
    """Typos get a suggestion; unsigned callbacks and a reclaim shorter than a delivery are flagged."""
    settings = Settings(allow_unsigned=True, reclaim_idle="5s", delivery_timeout="10s")
    found = [str(f) for f in settings_findings(settings, ["RELAY_PARTITON"])]
    assert "warning: RELAY_PARTITON is not a setting and is ignored (did you mean RELAY_PARTITIONS?)" in found
    assert any(f.startswith("warning: RELAY_ALLOW_UNSIGNED=true") for f in found)
    assert any(f.startswith("error: RELAY_RECLAIM_IDLE must exceed") for f in found)


def test_spread_over_shards_is_reported() -> None:
    """Fewer partitions' shards than the cluster has is a warning."""
    assert spread_finding(3, 2, 2).level == "warning"
    assert spread_finding(3, 3, 12).level == "ok"


@pytest.mark.parametrize(
    ("levels", "strict", "code"),
    [((), False, 0), (("warning",), False, 0), (("warning",), True, 1), (("ok", "error"), False, 1)],
)
def test_exit_codes(levels: tuple[Level, ...], strict: bool, code: int) -> None:
    """0 when fit, 1 on an error, and on a warning too with --strict."""
    assert exit_code([Finding(level, "x") for level in levels], strict) == code


@pytest.mark.parametrize(
    ("levels", "strict", "line"),
    [
        (("ok", "warning"), True, "strict: 1 warning, exit 1"),
        (("warning", "warning"), True, "strict: 2 warnings, exit 1"),
        (("warning",), False, None),
        (("ok",), True, None),
        (("warning", "error"), True, None),  # exit 1 for the error, which says so itself
    ],
)
def test_strict_says_why_it_fails(levels: tuple[Level, ...], strict: bool, line: str | None) -> None:
    """With --strict, warnings alone failing the check are counted on a last line."""
    assert strict_summary([Finding(level, "x") for level in levels], strict) == line


MIB = 2**20


@pytest.mark.parametrize(
    ("rate", "maxmemory", "level", "words"),
    [
        (None, 100 * MIB, "ok", "ingest rate not known yet"),
        (10.0, 0, "ok", "maxmemory is unset"),
        (10.0, 200 * MIB, "ok", "= 64 MiB, within half of maxmemory (200 MiB)"),
        (10.0, 100 * MIB, "warning", "= 64 MiB, over half of maxmemory (100 MiB)"),
    ],
)
def test_retention_is_sized_against_maxmemory(
    rate: float | None, maxmemory: int, level: str, words: str
) -> None:
    """Retention x rate x bytes per retained event past half of maxmemory is a warning."""
    finding = retention_finding(Settings(stream_retention="1h"), rate, maxmemory, "given")
    assert finding.level == level and words in finding.text


@pytest.fixture
def persistent_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(appendonly=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def relay_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RELAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RELAY_CALLFIRE_SECRETS", "s")
    monkeypatch.setenv("RELAY_API_CREDENTIALS", "u:p")
    monkeypatch.setenv("RELAY_SECRET_KEYS", Fernet.generate_key().decode())


@pytest.mark.usefixtures("relay_env")
def test_check_passes_on_a_persistent_redis(
    persistent_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against a Redis with AOF and noeviction, `relay check --strict` prints only ok lines, exit 0."""
    monkeypatch.setenv("RELAY_REDIS_URL", persistent_redis.url)
    assert main(["check", "--strict"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok: redis: Redis ")
    assert lines[1] == "ok: redis: AOF on (appendfsync everysec)"
    assert lines[2].startswith("ok: ingest rate not known yet") and len(lines) == 3


@pytest.mark.usefixtures("relay_env")
def test_check_warns_when_retention_outgrows_maxmemory(
    persistent_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the rate the streams show (121 events over 2 minutes) or one given, retention that
    needs over half of maxmemory is a warning (exit 1 with --strict)."""
    client = sync_redis.Redis.from_url(persistent_redis.url)
    client.config_set("maxmemory", 10 * MIB)
    now = int(time.time() * 1000)
    for n in range(121):
        client.xadd(Keys("relay", 4).events(0), {"junk": "1"}, id=f"{now - 120_000 + n * 1000}-0")
    client.close()
    monkeypatch.setenv("RELAY_REDIS_URL", persistent_redis.url)
    assert main(["check", "--strict"]) == 1
    assert "x 1.0 events/s (measured on the streams)" in capsys.readouterr().out
    assert main(["check", "--strict", "--ingest-rate", "0.1"]) == 0
    assert "x 0.1 events/s (given)" in capsys.readouterr().out


@pytest.mark.usefixtures("relay_env")
def test_check_warns_when_persistence_is_off(
    redis_server: PrivateRedis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The test Redis runs without AOF or RDB: a warning, exit 0, or exit 1 with --strict."""
    monkeypatch.setenv("RELAY_REDIS_URL", redis_server.url)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "persistence is off" in out and "strict:" not in out
    assert main(["check", "--strict"]) == 1
    lines = capsys.readouterr().out.splitlines()
    warnings = sum(line.startswith("warning: ") for line in lines)
    assert lines[-1] == f"strict: {warnings} warning{'s' if warnings > 1 else ''}, exit 1"


@pytest.mark.usefixtures("relay_env")
def test_check_fails_in_one_line_when_redis_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No Redis at the URL: an error line naming it (password hidden), exit 1."""
    monkeypatch.setenv("RELAY_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    assert main(["check", "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("error: cannot use Redis at redis://:***@127.0.0.1:1/0: ")
    assert out.count("\n") == 1
    assert "hunter2" not in out


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`relay` commands configure logging for the process; put it back after each test."""
    with saved_logging():
        yield


def test_no_secret_keys_is_a_warning_with_a_redis_url() -> None:
    """With RELAY_REDIS_URL and no RELAY_SECRET_KEYS, `check` warns (so --strict fails)."""
    settings = Settings(redis_url="redis://db:6379/0", callfire_secrets="s", api_credentials="u:p")
    found = [f for f in settings_findings(settings, []) if "RELAY_SECRET_KEYS" in f.text]
    assert [f.level for f in found] == ["warning"]
    assert exit_code(found, strict=True) == 1


@pytest.mark.parametrize(
    "values",
    [{}, {"redis_url": "redis://db:6379/0", "secret_keys": Fernet.generate_key().decode()}],
    ids=["embedded Redis", "keys set"],
)
def test_secret_keys_not_asked_for(values: dict[str, str]) -> None:
    """With keys, or on the embedded Redis (no RELAY_REDIS_URL), nothing is said about keys."""
    settings = Settings(callfire_secrets="s", api_credentials="u:p", **values)
    assert not [f for f in settings_findings(settings, []) if "RELAY_SECRET_KEYS" in f.text]


@pytest.mark.parametrize(("proxies", "warned"), [("0.0.0.0/0", True), ("::/0", True), ("10.0.0.0/8", False)])
def test_trusting_every_address_is_warned(proxies: str, warned: bool) -> None:
    """RELAY_TRUSTED_PROXIES of 0.0.0.0/0 or ::/0 lets anyone pick its address: a warning."""
    found = settings_findings(Settings(trusted_proxies=proxies), [])
    hits = [f for f in found if "RELAY_TRUSTED_PROXIES" in f.text]
    assert [f.level for f in hits] == (["warning"] if warned else [])
