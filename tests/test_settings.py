"""Settings: environment, RELAY_CONFIG (TOML, YAML), RELAY_<NAME>_FILE, errors naming the setting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from relay.cli import main
from relay.settings import Settings
from tests.logstate import saved_logging


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELAY_* variable of the machine leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("RELAY_"):
            monkeypatch.delenv(name)


def test_environment_variables_set_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_<NAME> sets a setting, durations in any unit."""
    monkeypatch.setenv("RELAY_PARTITIONS", "8")
    monkeypatch.setenv("RELAY_DEDUP_WINDOW", "250ms")
    monkeypatch.setenv("RELAY_RETRY_SCHEDULE", "1s, 2m")
    settings = Settings.load()
    assert (settings.partitions, settings.dedup_window, settings.retry_schedule) == (8, 0.25, (1.0, 120.0))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("relay.toml", 'partitions = 6\nredis_timeout = "3s"\nlog_format = "json"\n'),
        ("relay.yaml", "partitions: 6\nredis_timeout: 3s\nlog_format: json\n"),
    ],
)
def test_config_file_sets_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str
) -> None:
    """RELAY_CONFIG names a TOML or YAML file of settings."""
    path = tmp_path / name
    path.write_text(text)
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    settings = Settings.load()
    assert (settings.partitions, settings.redis_timeout, settings.log_format) == (6, 3.0, "json")


def test_environment_beats_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A RELAY_<NAME> variable overrides the same setting in RELAY_CONFIG."""
    path = tmp_path / "relay.toml"
    path.write_text("partitions = 6\n")
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    monkeypatch.setenv("RELAY_PARTITIONS", "9")
    assert Settings.load().partitions == 9


def test_secret_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """RELAY_<NAME>_FILE reads the value from a file (a Docker or Kubernetes secret), stripped."""
    path = tmp_path / "secrets"
    path.write_text("s3cret-one,42:bound-two\n")
    monkeypatch.setenv("RELAY_CALLFIRE_SECRETS_FILE", str(path))
    secrets = Settings.load().callfire_secrets
    assert secrets.shared == (b"s3cret-one",)
    assert secrets.allowed_for(42) == (b"bound-two",)


def test_settings_never_print_a_secret() -> None:
    """The repr of Settings shows neither CallFire secrets nor API passwords."""
    settings = Settings(callfire_secrets="cf-s3cret-value", api_credentials="admin:pw-s3cret-value")
    text = repr(settings) + str(settings)
    assert "cf-s3cret-value" not in text
    assert "pw-s3cret-value" not in text


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RELAY_PARTITIONS": "many"}, "RELAY_PARTITIONS"),
        ({"RELAY_PARTITIONS": "0"}, "RELAY_PARTITIONS"),
        ({"RELAY_REDIS_URL": "http://example.com"}, "RELAY_REDIS_URL"),
        ({"RELAY_REDIS_URL": "redis://127.0.0.1:/0"}, "RELAY_REDIS_URL"),
        ({"RELAY_REDIS_URL": "redis://127.0.0.1:70000/0"}, "RELAY_REDIS_URL"),
        ({"RELAY_REDIS_URL": "redis://:6379/0"}, "RELAY_REDIS_URL"),
        ({"RELAY_REDIS_URL": "redis+sentinel://127.0.0.1:26379"}, "RELAY_REDIS_URL"),
        ({"RELAY_REDIS_URL": "unix://", "RELAY_REDIS_CLUSTER": "true"}, "RELAY_REDIS_URL"),
        ({"RELAY_REDIS_URL": "redis://127.0.0.1/0?bogus=1"}, "RELAY_REDIS_URL: has an option redis-py"),
        ({"RELAY_REDIS_URL": "redis://127.0.0.1/0?socket_timeout=abc"}, "RELAY_REDIS_URL: has a value"),
        ({"RELAY_REDIS_URL": "unix:///run/redis.sock?db=x"}, "RELAY_REDIS_URL: has a value"),
        (
            {"RELAY_REDIS_URL": "redis://127.0.0.1:7000?bogus=1", "RELAY_REDIS_CLUSTER": "true"},
            "RELAY_REDIS_URL",
        ),
        ({"RELAY_SECRET_KEYS": ","}, "RELAY_SECRET_KEYS"),
        ({"RELAY_SECRET_KEYS": " , "}, "RELAY_SECRET_KEYS"),
        ({"RELAY_REDIS_URL": "unix:///run/redis.sock", "RELAY_REDIS_CLUSTER": "true"}, "RELAY_REDIS_CLUSTER"),
        ({"RELAY_API_URL": "relay.example.com"}, "RELAY_API_URL"),
        ({"RELAY_API_URL": "ftp://relay.example.com"}, "RELAY_API_URL"),
        ({"RELAY_API_URL": "https://relay.example.com/?a=1"}, "RELAY_API_URL"),
        ({"RELAY_API_URL": "https://user:pw@relay.example.com"}, "RELAY_API_URL"),
        ({"RELAY_LOG_LEVEL": "loud"}, "RELAY_LOG_LEVEL"),
        ({"RELAY_RETRY_SCHEDULE": "5s, soon"}, "RELAY_RETRY_SCHEDULE"),
        ({"RELAY_REDIS_MIN_REPLICAS": "-1"}, "RELAY_REDIS_MIN_REPLICAS"),
        ({"RELAY_BREAKER_FAILURES": "-1"}, "RELAY_BREAKER_FAILURES"),
        ({"RELAY_BREAKER_MAX_COOLDOWN": "-5s"}, "RELAY_BREAKER_MAX_COOLDOWN"),
        ({"RELAY_BREAKER_MAX_COOLDOWN": "0s"}, "RELAY_BREAKER_MAX_COOLDOWN"),
        ({"RELAY_DISABLE_AFTER": "-1s"}, "RELAY_DISABLE_AFTER"),
        ({"RELAY_REDIS_CLUSTER": "true"}, "RELAY_REDIS_CLUSTER"),
        ({"RELAY_CALLFIRE_SECRETS_FILE": "/nonexistent/secret"}, "RELAY_CALLFIRE_SECRETS_FILE"),
        ({"RELAY_CONFIG": "/nonexistent/relay.toml"}, "RELAY_CONFIG"),
        ({"RELAY_PORT": "8080", "RELAY_ADMIN_PORT": "8080"}, "RELAY_ADMIN_PORT"),
        ({"RELAY_ADMIN_PORT": "8080"}, "RELAY_ADMIN_PORT"),
        ({"RELAY_TRUSTED_PROXIES": "10.0.0.0/33"}, "RELAY_TRUSTED_PROXIES"),
        ({"RELAY_TRUSTED_PROXIES": "10.0.0.0/8, ingress"}, "RELAY_TRUSTED_PROXIES"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], named: str
) -> None:
    """An invalid value stops the CLI with exit 2 and one stderr line that names the setting."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("relay: ")
    assert named in err
    assert "Traceback" not in err and "settings:" not in err


@pytest.mark.parametrize(
    ("name", "text", "named"),
    [
        ("bad.yaml", "partitions: [1\nlog_level: info\n", "RELAY_CONFIG"),
        ("bad.toml", "partitions = \n", "RELAY_CONFIG"),
        ("list.yaml", "- partitions\n", "RELAY_CONFIG"),
        ("typo.toml", "partition = 3\n", "RELAY_PARTITION"),
        ("value.toml", 'partitions = "x"\n', "RELAY_PARTITIONS"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    text: str,
    named: str,
) -> None:
    """A config file that does not parse, or holds a bad or unknown setting, exits 2 in one line."""
    path = tmp_path / name
    path.write_text(text)
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err


def test_unknown_relay_variables_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A RELAY_* variable that names no setting (a typo) is listed; real ones and *_FILE are not."""
    monkeypatch.setenv("RELAY_PARTITON", "3")
    monkeypatch.setenv("RELAY_PORT", "8081")
    monkeypatch.setenv("RELAY_API_CREDENTIALS_FILE", "/run/secrets/api")
    monkeypatch.setenv("RELAY_CONFIG", "/etc/relay.toml")
    assert Settings.unknown_env() == ["RELAY_PARTITON"]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`relay` commands configure logging for the process; put it back after each test."""
    with saved_logging():
        yield


@pytest.mark.parametrize("value", ["9" * 400, "inf", "11000d"])
def test_endless_durations_are_refused(value: str) -> None:
    """A duration that overflows or exceeds ten years is an error, not a silently disabled timeout."""
    with pytest.raises(ValidationError, match=r"longer than ten years|not a duration"):
        Settings(delivery_timeout=value)


@pytest.mark.parametrize("value", ["INFO", "Warning", " debug "])
def test_log_level_is_accepted_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """RELAY_LOG_LEVEL=INFO means info: the level is read in any case."""
    monkeypatch.setenv("RELAY_LOG_LEVEL", value)
    monkeypatch.setenv("RELAY_LOG_FORMAT", "JSON")
    settings = Settings.load()
    assert (settings.log_level, settings.log_format) == (value.strip().lower(), "json")


def test_a_bad_redis_url_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed RELAY_REDIS_URL is named with what is wrong, and its password is not printed."""
    monkeypatch.setenv("RELAY_REDIS_URL", "redis://:hunter2@127.0.0.1:/0")
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "RELAY_REDIS_URL: has an empty port" in err
    assert "hunter2" not in err


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?socket_timeout=2&health_check_interval=5",
        "rediss://127.0.0.1:6380/0?ssl_cert_reqs=none",
        "unix:///run/redis.sock?db=1",
        "redis+sentinel://127.0.0.1:26379/mymaster?sentinel_password=x",
    ],
)
def test_redis_url_options_redis_py_takes_are_accepted(url: str) -> None:
    """Query options redis-py reads (typed as it types them) pass the check."""
    assert Settings(redis_url=url).redis_url == url


def test_a_bad_redis_url_option_is_named_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An option redis-py does not take is named; the URL's password is not printed."""
    monkeypatch.setenv("RELAY_REDIS_URL", "redis://:hunter2@127.0.0.1/0?sockettimeout=2")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    line = (
        "relay: invalid configuration: RELAY_REDIS_URL: has an option redis-py does not take: sockettimeout"
    )
    assert err == line + "\n"
