"""``relay webhooks list|show|create|delete`` against a private Redis, as an operator runs it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.cli import main
from tests.logstate import saved_logging
from tests.redis_server import PrivateRedis


@pytest.fixture
def cli_env(redis_server: PrivateRedis, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment a shell would give: this test's Redis and key prefix, nothing else."""
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RELAY_REDIS_URL", redis_server.url)
    monkeypatch.setenv("RELAY_KEY_PREFIX", prefix)
    monkeypatch.setenv("RELAY_LOG_FORMAT", "json")
    with saved_logging():  # the CLI configures logging for the process: put it back after
        yield


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["webhooks", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


CREATE = (
    *("create", "--resource", "CallBroadcast", "--event", "started", "--event", "FINISHED"),
    *("--callback", "http://127.0.0.1:9/h", "--name", "ops"),
)
CALL = ("create", "--resource", "OutboundCall", "--event")
ERRORS = [
    (
        ("create", "--resource", "Nope", "--event", "x", "--callback", "http://a/"),
        "resource: unknown resource",
    ),
    ((*CALL, "Started", "--callback", "http://a/"), "events: "),
    ((*CALL, "Finished", "--callback", "a"), "callback: "),
    (
        (*CALL, "Finished", "--callback", "http://a/", "--secret-file", "/nonexistent/s"),
        "--secret-file: cannot",
    ),
    (("show", "424242"), "no webhook with id 424242"),
    ((*CALL, "Finished", "--callback", "http://a/", "--filter", "{"), "--filter: is not valid JSON"),
    (
        (*CALL, "Finished", "--callback", "http://a/", "--filter", '{"a": {"$in": 1}}'),
        "filter.a.$in: must be",
    ),
]


@pytest.mark.usefixtures("cli_env")
def test_create_then_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """create prints the new id; show prints the webhook as the API does, the secret only as set."""
    secret = tmp_path / "secret"
    secret.write_text("cli-secret-value\n")
    code, out, _ = run(capsys, *CREATE, "--secret-file", str(secret))
    assert code == 0
    webhook_id = int(out)
    code, out, _ = run(capsys, "show", str(webhook_id))
    shown = json.loads(out)
    assert (shown["id"], shown["events"], shown["secret"]) == (webhook_id, ["Started", "Finished"], "(set)")
    assert "cli-secret-value" not in out


@pytest.mark.usefixtures("cli_env")
def test_list_filters(capsys: pytest.CaptureFixture[str]) -> None:
    """list shows matching webhooks, one line each, and the count on stderr."""
    run(capsys, *CREATE)
    run(
        capsys,
        "create",
        "--resource",
        "OutboundCall",
        "--event",
        "Finished",
        "--callback",
        "http://127.0.0.1:9/o",
    )
    code, out, err = run(capsys, "list", "--resource", "CallBroadcast", "--event", "STARTED")
    assert code == 0
    assert len(out.splitlines()) == 1 and "CallBroadcast" in out and "ops" in out
    assert "1 shown, 1 matching" in err
    code, out, _ = run(capsys, "list", "--json", "--disabled")
    assert out == ""


@pytest.mark.usefixtures("cli_env")
def test_delete(capsys: pytest.CaptureFixture[str]) -> None:
    """delete removes the webhook; deleting it again is a one-line error and exit 1."""
    webhook_id = run(capsys, *CREATE)[1].strip()
    assert run(capsys, "delete", webhook_id)[0] == 0
    code, out, err = run(capsys, "delete", webhook_id)
    assert (code, out) == (1, "")
    assert err.strip() == f"relay: no webhook with id {webhook_id}"


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(("argv", "message"), ERRORS)
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str) -> None:
    """Invalid input is one line on stderr naming what is wrong, exit 1, nothing on stdout."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.usefixtures("cli_env")
def test_create_with_a_filter(capsys: pytest.CaptureFixture[str]) -> None:
    """--filter takes the filter as JSON; show prints it back."""
    answered = {"resource.finalCallResult": {"$in": ["LA", "AM"]}}
    code, out, _ = run(capsys, *CALL, "Finished", "--callback", "http://a/", "--filter", json.dumps(answered))
    assert code == 0
    assert json.loads(run(capsys, "show", out.strip())[1])["filter"] == answered
