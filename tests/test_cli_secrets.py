"""relay/cli/secrets.py: `relay secrets reencrypt` draws a progress bar on a terminal, never in a
pipe, and ends with the count."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from relay.cli import main
from relay.keys import Keys
from relay.secrets import SecretKeys
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import WebhookSpec

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def reencrypt(
    settings: Settings, redis: RedisClient, keys: Keys, monkeypatch: pytest.MonkeyPatch, stderr: io.StringIO
) -> str:
    """Store 25 webhooks sealed under `old`, run `reencrypt` with `new,old`; what it printed."""
    store = WebhookStore(redis, keys, secret_keys=SecretKeys.parse(OLD))
    spec = WebhookSpec(resource="OutboundCall", events=("Finished",), callback="http://127.0.0.1:9/h")
    for n in range(25):
        await store.create(spec.model_copy(update={"secret": SecretStr(f"s{n}")}), 0)
    monkeypatch.setenv("RELAY_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("RELAY_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("RELAY_SECRET_KEYS", f"{NEW},{OLD}")
    monkeypatch.setenv("RELAY_LOG_LEVEL", "error")
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert await asyncio.to_thread(main, ["secrets", "reencrypt"]) == 0
    return stdout.getvalue()


async def test_progress_bar_on_a_terminal(
    settings: Settings, redis: RedisClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, stderr shows the bar up to 25/25; stdout has the count alone."""
    terminal = Terminal()
    out = await reencrypt(settings, redis, keys, monkeypatch, terminal)
    assert "re-encrypting [##############################] 25/25" in terminal.getvalue()
    assert out == "25 secret(s) re-encrypted under the first key, 0 already were (or have no secret)\n"


async def test_no_progress_bar_in_a_pipe(
    settings: Settings, redis: RedisClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal (a pipe, a log), no bar is drawn: only the count is printed."""
    pipe = io.StringIO()
    out = await reencrypt(settings, redis, keys, monkeypatch, pipe)
    assert "re-encrypting" not in pipe.getvalue()
    assert out.startswith("25 secret(s) re-encrypted")
