"""Webhooks declared in RELAY_WEBHOOKS_FILE: validated like the API, upserted by name at start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.api.config_file import apply_webhooks, parse_webhooks_file
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import connect
from relay.store.webhooks import WebhookStore
from relay.webhooks.query import WebhookQuery
from tests.api_client import AUTH

NOW = 1_700_000_000_000
EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "webhooks.example.yaml"


def file_text(*entries: dict[str, Any]) -> str:
    return yaml.safe_dump({"webhooks": list(entries)})


def entry(**values: Any) -> dict[str, Any]:
    return {
        "name": "calls",
        "resource": "OutboundCall",
        "events": ["finished"],
        "callback": "http://127.0.0.1:9/",
        **values,
    }


def test_example_file_is_valid(tmp_path: Path) -> None:
    """config/webhooks.example.yaml parses (its secretFile pointed at a real file)."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    text = EXAMPLE.read_text().replace("/run/secrets/crm-webhook-secret", str(secret))
    specs = parse_webhooks_file(text, "example", NOW)
    assert [s.name for s in specs] == ["crm-calls-finished", "broadcasts"]
    assert specs[0].secret is not None and specs[0].secret.get_secret_value() == "s3cret"


BAD_FILES = [
    ("webhooks: [", "not valid YAML"),
    ("- a", "a `webhooks` list"),
    (file_text(entry(name=None)), "name: required"),
    (file_text(entry(), entry()), "used twice"),
    (file_text(entry(resource="Nope")), r"webhooks\[0\]: resource:"),
    (file_text(entry(secretFile="/nonexistent/x")), "secretFile: cannot read"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_invalid_file_is_refused_naming_the_entry(text: str, message: str) -> None:
    """A bad file raises one ValueError saying which entry and field."""
    with pytest.raises(ValueError, match=message):
        parse_webhooks_file(text, "hooks.yaml", NOW)


async def test_apply_is_an_idempotent_upsert(redis: Any, keys: Keys) -> None:
    """Applying creates, re-applying changes nothing, a changed entry updates in place."""
    store = WebhookStore(redis, keys)
    specs = parse_webhooks_file(file_text(entry(), entry(name="other")), "f", NOW)
    assert await apply_webhooks(store, specs, NOW) == {"created": 2, "updated": 0, "unchanged": 0}
    version = await store.version()
    assert await apply_webhooks(store, specs, NOW) == {"created": 0, "updated": 0, "unchanged": 2}
    assert await store.version() == version
    changed = parse_webhooks_file(file_text(entry(callback="http://127.0.0.1:9/new")), "f", NOW)
    assert await apply_webhooks(store, changed, NOW + 1) == {"created": 0, "updated": 1, "unchanged": 0}
    total, found = await store.find(WebhookQuery(name="calls"))
    assert total == 1 and found[0].callback == "http://127.0.0.1:9/new"


async def test_ambiguous_name_is_refused(redis: Any, keys: Keys) -> None:
    """When two stored webhooks share the entry's name, the file cannot say which: ValueError."""
    store = WebhookStore(redis, keys)
    spec = parse_webhooks_file(file_text(entry()), "f", NOW)[0]
    await store.create(spec, NOW)
    await store.create(spec, NOW)
    with pytest.raises(ValueError, match="2 webhooks are named 'calls'"):
        await apply_webhooks(store, [spec], NOW)


async def test_file_is_applied_at_start(
    tmp_path: Path, make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """With RELAY_WEBHOOKS_FILE set, the app serves the file's webhooks once started."""
    path = tmp_path / "hooks.yaml"
    path.write_text(file_text(entry()))
    client = await make_client(make_settings(webhooks_file=path))
    page = await (await client.get("/v2/webhooks", headers=AUTH)).json()
    assert [item["name"] for item in page["items"]] == ["calls"]


async def test_processes_applying_at_once_create_each_webhook_once(redis_server: Any, keys: Keys) -> None:
    """Several processes applying the same file at the same moment leave one webhook per name."""
    clients = [connect(redis_server.url) for _ in range(4)]
    specs = parse_webhooks_file(file_text(entry(), entry(name="b"), entry(name="c")), "f", NOW)
    try:
        await asyncio.gather(*(apply_webhooks(WebhookStore(c, keys), specs, NOW) for c in clients))
        names = [w.name for w in await WebhookStore(clients[0], keys).all()]
    finally:
        for c in clients:
            await c.aclose()
    assert sorted(names) == ["b", "c", "calls"]
