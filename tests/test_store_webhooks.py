"""The webhook table on Redis: ids, atomic writes, indexes, versions, listing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from relay.keys import Keys
from relay.secrets import SecretKeys
from relay.store.webhooks import NameTakenError, WebhookStore
from relay.webhooks.model import WebhookBody, WebhookSpec, merged
from relay.webhooks.query import WebhookQuery
from relay.webhooks.sealing import SealedSecret, unseal

NOW = 1_700_000_000_000


def spec(**values: Any) -> WebhookSpec:
    base: dict[str, Any] = {
        "resource": "OutboundCall",
        "events": ["Finished"],
        "callback": "http://127.0.0.1:9/h",
    }
    return WebhookSpec.model_validate({**base, **values})


@pytest.fixture
def store(redis: Any, keys: Keys) -> WebhookStore:
    return WebhookStore(redis, keys)


async def index_sets(redis: Any, keys: Keys) -> dict[str, set[int]]:
    """Every non-empty index set, as term -> ids."""
    out = {}
    async for key in redis.scan_iter(match=keys.webhook_index("*")):
        members = await redis.zrange(key, 0, -1)
        out[key.decode().split(":idx:", 1)[1]] = {int(m) for m in members}
    return out


async def test_create_assigns_increasing_ids(store: WebhookStore) -> None:
    """Each create gets the next id and the timestamps it was given."""
    first = await store.create(spec(), NOW)
    second = await store.create(spec(), NOW + 1)
    assert second.id == first.id + 1
    assert (second.created_at, second.updated_at) == (NOW + 1, NOW + 1)


async def test_get_returns_what_was_stored_with_its_secret(store: WebhookStore) -> None:
    """A stored webhook reads back whole, secret included (workers sign with it)."""
    created = await store.create(spec(secret="k", name="n"), NOW)
    got = await store.get(created.id)
    assert got == created
    assert got is not None and got.secret is not None and got.secret.get_secret_value() == "k"


async def test_get_unknown_is_none(store: WebhookStore) -> None:
    """An unknown id reads as None."""
    assert await store.get(424242) is None


async def test_every_write_bumps_the_version(store: WebhookStore) -> None:
    """create, update, set_enabled and delete each bump the version once."""
    created = await store.create(spec(), NOW)
    start = await store.version()
    await store.update(created.id, spec(name="x"), NOW)
    await store.set_enabled(created.id, False, NOW)
    await store.delete(created.id)
    assert await store.version() == start + 3


async def test_update_keeps_id_and_created_at(store: WebhookStore) -> None:
    """An update replaces the writable fields, keeps createdAt and sets updatedAt."""
    created = await store.create(spec(name="a"), NOW)
    updated = await store.update(created.id, spec(name="b"), NOW + 5)
    assert updated is not None
    assert (updated.id, updated.name, updated.created_at, updated.updated_at) == (
        created.id,
        "b",
        NOW,
        NOW + 5,
    )
    assert await store.get(created.id) == updated


async def test_update_unknown_is_none(store: WebhookStore) -> None:
    """Updating an unknown id writes nothing and returns None."""
    assert await store.update(424242, spec(), NOW) is None
    assert await store.all() == []


async def test_failed_change_writes_nothing(store: WebhookStore) -> None:
    """A change function that raises leaves the webhook and the version as they were."""
    created = await store.create(spec(), NOW)
    version = await store.version()
    with pytest.raises(ValidationError):
        await store.update(created.id, lambda s: merged(s, WebhookBody(resource="ContactList"), NOW), NOW)
    assert await store.get(created.id) == created
    assert await store.version() == version


async def test_set_enabled(store: WebhookStore) -> None:
    """set_enabled switches a webhook off and on; False for an unknown id."""
    created = await store.create(spec(), NOW)
    assert await store.set_enabled(created.id, False, NOW + 1)
    got = await store.get(created.id)
    assert got is not None and not got.enabled and got.updated_at == NOW + 1
    assert not await store.set_enabled(424242, False, NOW)


async def test_of_racing_switches_exactly_one_changes_it(store: WebhookStore) -> None:
    """Several callers switching one webhook off at once (racing 410s): one is told it changed it."""
    created = await store.create(spec(), NOW)
    changed = await asyncio.gather(*(store.set_enabled(created.id, False, NOW + 1) for _ in range(5)))
    assert sorted(changed) == [False, False, False, False, True]
    assert not await store.set_enabled(created.id, False, NOW + 2)


async def test_delete_removes_webhook_and_index_entries(store: WebhookStore, redis: Any, keys: Keys) -> None:
    """After a delete the webhook is gone, from the table and from every index."""
    created = await store.create(spec(name="gone"), NOW)
    assert await store.delete(created.id)
    assert await store.get(created.id) is None
    assert await index_sets(redis, keys) == {}
    assert not await store.delete(created.id)


async def test_update_moves_index_entries(store: WebhookStore, redis: Any, keys: Keys) -> None:
    """An update leaves no stale index entry behind."""
    created = await store.create(spec(name="a"), NOW)
    await store.update(created.id, spec(name="b", resource="CallBroadcast", events=["started"]), NOW)
    assert await index_sets(redis, keys) == {
        "all": {created.id},
        "name:b": {created.id},
        "resource:CallBroadcast": {created.id},
        "event:started": {created.id},
        "callback:http://127.0.0.1:9/h": {created.id},
        "enabled:1": {created.id},
    }


async def test_concurrent_updates_both_land(store: WebhookStore) -> None:
    """Two racing read-modify-write updates of different fields both take effect."""
    created = await store.create(spec(), NOW)

    def rename(s: WebhookSpec) -> WebhookSpec:
        return s.model_copy(update={"name": "renamed"})

    await asyncio.gather(
        store.update(created.id, rename, NOW),
        store.set_enabled(created.id, False, NOW),
        *[store.update(created.id, lambda s: s, NOW) for _ in range(10)],
    )
    got = await store.get(created.id)
    assert got is not None and (got.name, got.enabled) == ("renamed", False)


async def test_unique_name_create_refuses_a_taken_name(store: WebhookStore) -> None:
    """create(unique_name=True) refuses a name another webhook has."""
    await store.create(spec(name="one"), NOW)
    with pytest.raises(NameTakenError):
        await store.create(spec(name="one"), NOW, unique_name=True)
    assert len(await store.all()) == 1


async def test_all_is_ordered_by_id(store: WebhookStore) -> None:
    """all() returns every webhook, by id."""
    made = [await store.create(spec(name=str(i)), NOW) for i in range(5)]
    assert await store.all() == made


async def test_find_filters_and_pages(store: WebhookStore) -> None:
    """find() intersects filters and returns the total and the requested page, by id."""
    calls = [await store.create(spec(name="c"), NOW) for _ in range(5)]
    await store.create(spec(resource="CallBroadcast", events=["Started"], name="c"), NOW)
    total, page = await store.find(
        WebhookQuery(name="c", resource="OutboundCall", event="FINISHED", offset=1, limit=2)
    )
    assert total == 5
    assert [w.id for w in page] == [calls[1].id, calls[2].id]


async def test_find_without_filters_lists_everything(store: WebhookStore) -> None:
    """No filter: every webhook is counted and paged."""
    made = [await store.create(spec(), NOW) for _ in range(3)]
    assert await store.find(WebhookQuery(offset=2, limit=10)) == (3, [made[2]])


async def test_version_never_comes_round_again_after_the_table_is_lost(
    store: WebhookStore, redis: Any, keys: Keys
) -> None:
    """A table rebuilt from nothing (Redis restarted empty) gets versions no reader held before."""
    await store.create(spec(), 1)
    await store.create(spec(), 2)
    before = await store.version()
    await redis.delete(keys.webhooks, keys.webhooks_version)
    await store.create(spec(), 3)
    assert await store.version() > before


async def test_sealed_secret_this_process_cannot_open_survives_an_update(redis: Any, keys: Keys) -> None:
    """An update that does not set the secret keeps a sealed one as stored, even one sealed under
    a key this process lacks (a rolling deploy): nothing is lost, nothing re-sealed."""
    theirs = SecretKeys.parse(Fernet.generate_key().decode())
    ours = WebhookStore(redis, keys, secret_keys=SecretKeys.parse(Fernet.generate_key().decode()))
    created = await WebhookStore(redis, keys, secret_keys=theirs).create(spec(secret=SecretStr("s")), NOW)
    before = await ours.get(created.id)
    body = WebhookBody.model_validate({"name": "renamed"})
    await ours.update(created.id, lambda current: merged(current, body, NOW), NOW + 1)
    after = await ours.get(created.id)
    assert before is not None and after is not None and after.name == "renamed"
    assert isinstance(after.secret, SealedSecret) and after.secret == before.secret
    assert unseal(after.secret, theirs.fernet) == SecretStr("s")


async def test_reseal_keeps_updated_at(redis: Any, keys: Keys) -> None:
    """Re-encrypting a secret is no change of the webhook: its updatedAt stays."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    created = await WebhookStore(redis, keys, secret_keys=SecretKeys.parse(old)).create(
        spec(secret=SecretStr("s")), NOW
    )
    rotating = WebhookStore(redis, keys, secret_keys=SecretKeys.parse(f"{new},{old}"))
    assert await rotating.reseal(created.id) == "resealed"
    assert await rotating.reseal(created.id) == "current"
    after = await rotating.get(created.id)
    assert after is not None and after.updated_at == created.updated_at
    assert isinstance(after.secret, SealedSecret)
    assert unseal(after.secret, SecretKeys.parse(new).fernet) == SecretStr("s")
