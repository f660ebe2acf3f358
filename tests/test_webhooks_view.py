"""The cached webhook view: matching, and changes from another process arriving within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY
from pydantic import SecretStr

from relay.keys import Keys
from relay.secrets import SecretKeys
from relay.store.connect import connect
from relay.store.webhooks import WebhookStore
from relay.webhooks.model import Webhook, stored
from relay.webhooks.sealing import Opener, SealedSecret
from relay.webhooks.view import WebhookView, behind, build_index
from tests.redis_server import PrivateRedis
from tests.test_store_webhooks import NOW, spec


async def eventually(condition: Callable[[], bool], within: float = 1.0) -> float:
    """Poll ``condition`` until true; how long it took. Fails past ``within`` seconds."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def two_processes(redis_server: PrivateRedis, keys: Keys) -> Any:
    """Two stores on two separate connections, as two processes would have."""
    a, b = connect(redis_server.url), connect(redis_server.url)
    yield WebhookStore(a, keys), WebhookStore(b, keys)
    await a.aclose()
    await b.aclose()


def test_matching_uses_resource_and_event_key() -> None:
    """Only webhooks on the resource, watching the event, and live, match."""
    hooks = [
        stored(spec(), webhook_id=1, created_at=NOW, now_ms=NOW),
        stored(spec(resource="InboundCall"), webhook_id=2, created_at=NOW, now_ms=NOW),
        stored(spec(enabled=False), webhook_id=3, created_at=NOW, now_ms=NOW),
        stored(spec(expires_at=NOW), webhook_id=4, created_at=NOW, now_ms=NOW),
        stored(spec(), webhook_id=5, created_at=NOW, now_ms=NOW),
    ]
    by_id, index = build_index(hooks)
    assert [w.id for w in index[("OutboundCall", "finished")]] == [1, 3, 4, 5]
    assert set(by_id) == {1, 2, 3, 4, 5}


async def test_view_matches_after_start(two_processes: Any) -> None:
    """A started view matches the live webhooks already stored, and gets them by id."""
    writer, reader = two_processes
    live = await writer.create(spec(), NOW)
    await writer.create(spec(enabled=False), NOW)
    view = WebhookView(reader)
    await view.start()
    try:
        assert view.matching("OutboundCall", "finished", NOW) == [live]
        assert view.matching("OutboundCall", "started", NOW) == []
        assert view.get(live.id) == live
    finally:
        await view.stop()


Write = Callable[[WebhookStore, int], Awaitable[object]]
WRITES: dict[str, Write] = {
    "update": lambda s, i: s.update(i, spec(events=["finished"], name="x"), NOW),
    "disable": lambda s, i: s.set_enabled(i, False, NOW),
    "delete": lambda s, i: s.delete(i),
}


@pytest.mark.parametrize("change", list(WRITES))
async def test_change_in_another_process_arrives_within_a_second(two_processes: Any, change: str) -> None:
    """Update, disable and delete made through another connection reach the view within 1 s."""
    writer, reader = two_processes
    created = await writer.create(spec(), NOW)
    view = WebhookView(reader)
    await view.start()
    try:
        before = view.get(created.id)
        await WRITES[change](writer, created.id)
        await eventually(lambda: view.get(created.id) != before, within=1.0)
    finally:
        await view.stop()


async def test_create_in_another_process_arrives_within_a_second(two_processes: Any) -> None:
    """A webhook created through another connection starts matching within 1 s."""
    writer, reader = two_processes
    view = WebhookView(reader)
    await view.start()
    try:
        created = await writer.create(spec(), NOW)
        await eventually(lambda: view.matching("OutboundCall", "finished", NOW) == [created], within=1.0)
    finally:
        await view.stop()


async def test_unchanged_version_does_not_reload(two_processes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """refresh() reads only the version while nothing changed."""
    _, reader = two_processes
    view = WebhookView(reader)
    await view.refresh()

    async def no_snapshot() -> Any:
        raise AssertionError("reloaded although the version did not change")

    monkeypatch.setattr(reader, "snapshot", no_snapshot)
    await view.refresh()


@pytest.mark.parametrize(
    ("held", "current", "reload"),
    [
        (None, 0, True),  # nothing loaded yet
        (5, 5, False),
        (5, 6, True),
        (6, 5, False),  # read before a concurrent reload finished: that reload covers it
        (5, 0, True),  # the counter is gone: Redis restarted empty
        (0, 0, False),
    ],
)
def test_behind(held: int | None, current: int, reload: bool) -> None:
    """A view reloads for a newer version, or for a counter that vanished; never for an older one."""
    assert behind(held, current) is reload


@pytest.mark.parametrize("change", ["create", *WRITES])
async def test_refresh_reflects_a_change_at_once(two_processes: Any, change: str) -> None:
    """After a write made through another connection, the next refresh() reflects it (no poll)."""
    writer, reader = two_processes
    created = await writer.create(spec(), NOW)
    view = WebhookView(reader)
    await view.refresh()
    before = view.get(created.id)
    if change == "create":
        created = await writer.create(spec(), NOW)
        before = None
    else:
        await WRITES[change](writer, created.id)
    await view.refresh()
    assert view.get(created.id) != before
    assert view.get(created.id) == await writer.get(created.id)


class _SlowSnapshots(WebhookStore):
    """A store whose snapshots wait, once read, until the test lets them through."""

    def __init__(self, inner: WebhookStore) -> None:
        super().__init__(inner.redis, inner.keys)
        self.gate = asyncio.Event()
        self.taken = asyncio.Event()

    async def snapshot(self) -> Any:
        taken = await super().snapshot()
        self.taken.set()
        await self.gate.wait()
        return taken


async def test_a_reload_started_before_a_change_does_not_end_a_later_refresh(two_processes: Any) -> None:
    """A refresh that reads a version newer than a reload under way waits for a reload of its own."""
    writer, reader = two_processes
    store = _SlowSnapshots(reader)
    view = WebhookView(store)
    await writer.create(spec(), NOW)
    early = asyncio.create_task(view.refresh())
    await store.taken.wait()
    created = await writer.create(spec(), NOW)
    late = asyncio.create_task(view.refresh())
    await asyncio.sleep(0.05)
    store.gate.set()
    await asyncio.gather(early, late)
    assert view.get(created.id) == created


async def test_concurrent_refreshes_share_one_reload(two_processes: Any) -> None:
    """Twenty refreshes at once after one change read the table once, and all see the change."""
    writer, reader = two_processes
    view = WebhookView(reader)
    await view.refresh()
    created = await writer.create(spec(), NOW)
    reloads = 0
    snapshot = reader.snapshot

    async def counted() -> Any:
        nonlocal reloads
        reloads += 1
        return await snapshot()

    reader.snapshot = counted  # type: ignore[method-assign]
    await asyncio.gather(*(view.refresh() for _ in range(20)))
    assert view.get(created.id) == created
    assert reloads == 1


@pytest.fixture
async def sealing_stores(redis_server: PrivateRedis, keys: Keys) -> Any:
    """A writer sealing with a key, a worker's view opening with it, and a writer with a key the
    view lacks."""
    client = connect(redis_server.url)
    shared, other = (
        SecretKeys.parse(Fernet.generate_key().decode()),
        SecretKeys.parse(Fernet.generate_key().decode()),
    )
    store = WebhookStore(client, keys, secret_keys=shared)
    yield (
        store,
        WebhookView(store, opener=Opener(shared.fernet)),
        WebhookStore(client, keys, secret_keys=other),
    )
    await client.aclose()


async def test_view_holds_secrets_opened(sealing_stores: Any) -> None:
    """Sealed in Redis, the secret is in plain text in a worker's view: a delivery decrypts nothing."""
    writer, view, _ = sealing_stores
    created = await writer.create(spec(secret=SecretStr("view-secret")), NOW)
    await view.refresh()
    held = view.get(created.id)
    assert held is not None and not isinstance(held.secret, SealedSecret)
    assert held.secret == SecretStr("view-secret")


async def test_view_without_opener_keeps_secrets_sealed(sealing_stores: Any) -> None:
    """A view that is not a worker's (the console's) opens nothing and logs nothing about it."""
    writer, _, _ = sealing_stores
    created = await writer.create(spec(secret=SecretStr("view-secret")), NOW)
    view = WebhookView(writer)
    with structlog.testing.capture_logs() as logged:
        await view.refresh()
    held = view.get(created.id)
    assert held is not None and isinstance(held.secret, SealedSecret)
    assert [e for e in logged if e["log_level"] == "error"] == []


async def test_refresh_opens_only_the_webhooks_that_changed(
    sealing_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After one webhook of three changes, a refresh opens that one; the others are kept as they
    were (the very same objects)."""
    writer, view, _ = sealing_stores
    hooks = [await writer.create(spec(secret=SecretStr(f"s{n}")), NOW) for n in range(3)]
    await view.refresh()
    before = {w.id: view.get(w.id) for w in hooks}
    opened: list[int] = []
    open_one = view.opener.open

    def counting(webhook: Webhook) -> Webhook:
        opened.append(webhook.id)
        return open_one(webhook)

    monkeypatch.setattr(view.opener, "open", counting)
    await writer.update(hooks[1].id, lambda s: s.model_copy(update={"name": "renamed"}), NOW)
    await view.refresh()
    assert opened == [hooks[1].id]
    assert view.get(hooks[0].id) is before[hooks[0].id]
    assert view.get(hooks[2].id) is before[hooks[2].id]
    changed = view.get(hooks[1].id)
    assert changed is not None and changed.name == "renamed" and changed.secret == SecretStr("s1")


async def test_unreadable_secret_stays_sealed_and_is_counted(sealing_stores: Any) -> None:
    """A secret sealed under a key the worker lacks is left sealed in its view and counted in
    relay_webhook_secrets_unreadable."""
    _, view, stranger = sealing_stores
    created = await stranger.create(spec(secret=SecretStr("not-for-you")), NOW)
    await view.refresh()
    held = view.get(created.id)
    assert held is not None and isinstance(held.secret, SealedSecret)
    assert REGISTRY.get_sample_value("relay_webhook_secrets_unreadable") == 1


async def test_current_reads_again_only_when_the_last_read_is_too_old(two_processes: Any) -> None:
    """current(within) leaves a view read less than ``within`` ago alone, and refreshes an older
    one: a delete made meanwhile is reflected."""
    writer, reader = two_processes
    created = await writer.create(spec(), NOW)
    view = WebhookView(reader)
    await view.refresh()
    assert await writer.delete(created.id)
    await view.current(within=60.0)
    assert view.get(created.id) is not None  # read just now: not read again
    await asyncio.sleep(0.02)
    assert not view.fresh(0.01)
    await view.current(within=0.01)
    assert view.get(created.id) is None
    assert view.fresh(0.01)
