"""Deliveries through key rotation, on the private Redis and a real sink: every step of the four
deploys in docs/operations.md still delivers verifiable signatures; a secret no configured key opens
is never sent (unsigned or otherwise), retried on the schedule, and ends as a dead letter of kind
``secret-unreadable`` unless a process with the key takes it first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY

from relay.cli import main
from relay.delivery import DeliveryService
from relay.delivery.message import Delivery
from relay.events import events_of
from relay.ingest.parsing import parse_callback
from relay.settings import Settings
from relay.store.connect import RedisClient
from relay.webhooks.model import WebhookSpec
from relay.webhooks.sealing import SealedSecret, unseal
from tests.callbacks import call_event, callback_body
from tests.delivery_harness import FAST, HOOK_SECRET, Harness, open_harness
from tests.sink import callfire_valid, standard_verified

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SPEC = {"resource": "OutboundCall", "events": ("Finished",), "secret": HOOK_SECRET}


def step_settings(make_settings: Callable[..., Settings], keys: str, **overrides: Any) -> Settings:
    """The settings of one deploy: the same Redis and prefix, these keys."""
    return make_settings(**{**FAST, **overrides, "secret_keys": keys})


@asynccontextmanager
async def worker(h: Harness, settings: Settings) -> AsyncIterator[DeliveryService]:
    """A delivery worker with ``settings`` (one deploy's), its view loaded; stopped on leaving."""
    service = DeliveryService(settings, h.redis, h.keys)
    await service.start()
    try:
        await service.ready.wait()
        yield service
    finally:
        await service.stop()


async def delivered_by(h: Harness, settings: Settings, paths: list[str]) -> None:
    """A worker with ``settings`` delivers one event to each of ``paths``, each signature valid."""
    before = {path: len(h.sink.at(path)) for path in paths}
    async with worker(h, settings):
        await h.publish(call_event())
        for path in paths:
            got = (await h.sink.wait_for(before[path] + 1, path))[-1]
            assert callfire_valid(got, HOOK_SECRET), path
            assert standard_verified(got, HOOK_SECRET)


def reencrypt(settings: Settings, monkeypatch: pytest.MonkeyPatch, keys: str) -> int:
    """`relay secrets reencrypt` against the test's Redis and prefix, with ``keys``."""
    monkeypatch.setenv("RELAY_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("RELAY_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("RELAY_SECRET_KEYS", keys)
    return main(["secrets", "reencrypt"])


async def test_deliveries_verify_through_every_step_of_a_rotation(
    make_settings: Callable[..., Settings],
    redis: RedisClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Keys `old`, then `old,new`, `new,old`, reencrypt, `new`: each deploy's worker delivers to a
    webhook sealed under `old` and to one sealed under `new`, signed with the secret."""
    async with open_harness(make_settings, redis, secret_keys=OLD) as h:
        await h.webhook("/first")
        await delivered_by(h, step_settings(make_settings, OLD), ["/first"])
        await delivered_by(h, step_settings(make_settings, f"{OLD},{NEW}"), ["/first"])
        step2 = step_settings(make_settings, f"{NEW},{OLD}")
        h.store.secret_keys = step2.secret_keys  # a `new,old` API process writes the second one
        await h.webhook("/second")
        await delivered_by(h, step2, ["/first", "/second"])
        assert await asyncio.to_thread(reencrypt, step2, monkeypatch, f"{NEW},{OLD}") == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            "1 secret(s) re-encrypted under the first key, 1 already were (or have no secret)"
        )
        new_only = step_settings(make_settings, NEW)
        for hook in await h.store.all():
            assert isinstance(hook.secret, SealedSecret)
            assert unseal(hook.secret, new_only.secret_keys.fernet) is not None
        await delivered_by(h, new_only, ["/first", "/second"])


async def test_reencrypt_seals_plain_text_left_from_before(
    make_settings: Callable[..., Settings],
    redis: RedisClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Secrets written before keys were set are sealed by `reencrypt`, then deliver as before."""
    async with open_harness(make_settings, redis) as h:
        await h.webhook("/plain")
        settings = step_settings(make_settings, NEW)
        assert await asyncio.to_thread(reencrypt, settings, monkeypatch, NEW) == 0
        assert capsys.readouterr().out.splitlines()[-1].startswith("1 secret(s) re-encrypted")
        (hook,) = await h.store.all()
        assert isinstance(hook.secret, SealedSecret)
        await delivered_by(h, settings, ["/plain"])


async def test_plain_text_is_sealed_at_its_next_write(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A plain-text secret from before keys is sealed the next time its webhook is written."""
    async with open_harness(make_settings, redis) as h:
        hook = await h.webhook("/plain")
        h.store.secret_keys = step_settings(make_settings, NEW).secret_keys
        await h.store.update(hook.id, lambda spec: spec.model_copy(update={"name": "renamed"}), 1)
        raw = await redis.hget(h.keys.webhooks, str(hook.id))
        assert raw is not None and HOOK_SECRET.encode() not in raw
        assert b'"sealedSecret":"gAAAA' in raw


async def test_reencrypt_without_keys_fails(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relay secrets reencrypt` with no RELAY_SECRET_KEYS exits 1 saying so."""
    monkeypatch.setenv("RELAY_REDIS_URL", str(settings.redis_url))
    monkeypatch.delenv("RELAY_SECRET_KEYS", raising=False)
    assert await asyncio.to_thread(main, ["secrets", "reencrypt"]) == 1
    assert "RELAY_SECRET_KEYS is not set" in capsys.readouterr().err


async def test_reencrypt_names_the_secrets_no_key_opens(
    make_settings: Callable[..., Settings],
    redis: RedisClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A secret sealed under a key no longer configured is counted and named; exit 1."""
    async with open_harness(make_settings, redis, secret_keys=OLD) as h:
        hook = await h.webhook("/lost")
        settings = step_settings(make_settings, NEW)
        assert await asyncio.to_thread(reencrypt, settings, monkeypatch, NEW) == 1
        out, err = capsys.readouterr()
        assert out.splitlines()[-1].endswith("1 unreadable")
        assert f"webhook(s) {hook.id}:" in err


def unreadable_count() -> float:
    return REGISTRY.get_sample_value("relay_deliveries_secret_unreadable_total") or 0.0


async def test_unreadable_secret_is_never_sent_and_ends_as_a_dead_letter(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A worker whose keys do not open the secret sends nothing: logged as an error, counted,
    retried on the schedule (two retries), then a dead letter of kind `secret-unreadable`."""
    async with open_harness(make_settings, redis, secret_keys=OLD) as h:
        hook = await h.webhook("/sealed")
        counted = unreadable_count()
        with structlog.testing.capture_logs() as logged:
            await delivered_nowhere(h, step_settings(make_settings, NEW))
        assert h.sink.received == []
        (letter,) = await h.dead_letters(0)
        assert (letter.kind, letter.webhook_id, letter.attempts) == ("secret-unreadable", hook.id, 3)
        assert unreadable_count() - counted == 3
        assert [a["outcome"] for a in await h.attempts(hook.id)] == ["dead", "retry", "retry"]
        errors = [e for e in logged if e["log_level"] == "error" and e.get("webhook_id") == hook.id]
        assert any("secret unreadable" in e["event"] for e in errors)


async def delivered_nowhere(h: Harness, settings: Settings) -> None:
    """Start a worker with ``settings``, publish one event, wait for its dead letter."""
    async with worker(h, settings):
        await h.publish(call_event())
        await h.dead_letters(1)
        await h.settled()


async def test_single_use_webhook_with_unreadable_secret_is_not_sent(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """The single-use path holds it back too: nothing sent, the webhook kept, a dead letter."""
    async with open_harness(make_settings, redis, secret_keys=OLD) as h:
        hook = await h.webhook("/once", single_use=True)
        await delivered_nowhere(h, step_settings(make_settings, NEW))
        assert h.sink.received == []
        assert [letter.kind for letter in await h.dead_letters(0)] == ["secret-unreadable"]
        assert await h.store.get(hook.id) is not None


async def test_a_rolling_deploy_loses_nothing(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A worker without the new key holds the delivery and retries; once a worker with the key
    replaces it, the retry is delivered, signed; no dead letter, nothing sent before."""
    slow = {"retry_schedule": ",".join(["0.3s"] * 20)}
    async with open_harness(make_settings, redis, secret_keys=f"{NEW},{OLD}", **slow) as h:
        hook = await h.webhook("/rolling")
        async with worker(h, step_settings(make_settings, OLD, **slow)):
            await h.publish(call_event())
            deadline = time.monotonic() + 5
            while not [a for a in await h.attempts(hook.id) if a["outcome"] == "retry"]:
                assert time.monotonic() < deadline, "the stale worker never held the delivery"
                await asyncio.sleep(0.05)
        assert h.sink.received == []
        async with worker(h, step_settings(make_settings, f"{NEW},{OLD}", **slow)):
            (got,) = await h.sink.wait_for(1, "/rolling")
            assert callfire_valid(got, HOOK_SECRET) and standard_verified(got, HOOK_SECRET)
            await h.settled()
        assert await h.dead_letters(0) == []


async def test_a_webhook_the_view_has_not_loaded_is_opened_from_redis(
    make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """A delivery for a webhook the worker's view lacks yet (it lags a write) reads it from Redis
    and opens its secret there: delivered, signed."""
    async with open_harness(make_settings, redis, secret_keys=f"{NEW},{OLD}") as h:
        service = await h.start()
        await service.view.stop()  # the view keeps what it loaded: an empty table
        hook = await h.store.create(WebhookSpec(**SPEC, callback=h.sink.url("/late")), 0)
        assert service.view.get(hook.id) is None
        (event,) = events_of(parse_callback(callback_body(call_event())), 0)
        fields = Delivery(hook.id, 1, event).to_fields()
        await redis.xadd(h.keys.deliveries(0), fields)  # type: ignore[arg-type]
        (got,) = await h.sink.wait_for(1, "/late")
        assert callfire_valid(got, HOOK_SECRET) and standard_verified(got, HOOK_SECRET)
