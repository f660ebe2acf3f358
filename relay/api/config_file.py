"""Webhooks declared in a YAML file (``RELAY_WEBHOOKS_FILE``), applied at start: subscriptions in git.

    webhooks:
      - name: calls-finished          # required, unique: the key of the upsert
        resource: OutboundCall
        events: [Finished]
        callback: https://crm.internal/callfire
        secretFile: /run/secrets/crm  # or `secret:`; a file keeps the secret out of git

Each entry is created, or updated in place when a webhook of that name exists and differs.
Webhooks not in the file are left alone. Applying the same file twice changes nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import structlog
import yaml
from pydantic import ValidationError

from relay.api.http import describe
from relay.store.webhooks import NameTakenError, WebhookStore
from relay.webhooks.model import WebhookBody, WebhookSpec, merged
from relay.webhooks.query import WebhookQuery

log = structlog.get_logger("relay.api")


def parse_webhooks_file(text: str, where: str, now_ms: int) -> list[WebhookSpec]:
    """The file's webhooks, validated as the API validates them; ValueError naming the entry."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {exc}") from None
    entries = data.get("webhooks") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a mapping with a `webhooks` list")
    specs: list[WebhookSpec] = []
    for index, entry in enumerate(entries):
        label = f"{where}: webhooks[{index}]"
        spec = _entry(entry, label, now_ms)
        if spec.name in {s.name for s in specs}:
            raise ValueError(f"{label}: the name {spec.name!r} is used twice")
        specs.append(spec)
    return specs


def _entry(entry: Any, label: str, now_ms: int) -> WebhookSpec:
    if not isinstance(entry, dict):
        raise ValueError(f"{label}: expected a mapping")
    values = dict(entry)
    secret_file = values.pop("secretFile", None)
    if secret_file is not None:
        try:
            values["secret"] = Path(str(secret_file)).read_text().strip()
        except OSError as exc:
            raise ValueError(f"{label}: secretFile: cannot read {secret_file}: {exc.strerror}") from None
    if not values.get("name"):
        raise ValueError(f"{label}: name: required (it is the key the file is applied by)")
    try:
        body = WebhookBody.model_validate_json(orjson.dumps(values))
        return merged(None, body, now_ms)
    except (ValidationError, TypeError) as exc:
        message = describe(exc, "entry") if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"{label}: {message}") from None


async def apply_webhooks(store: WebhookStore, specs: list[WebhookSpec], now_ms: int) -> dict[str, int]:
    """Upsert each spec by name; counts of ``created``, ``updated`` and ``unchanged``."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for spec in specs:
        counts[await _upsert(store, spec, now_ms)] += 1
    return counts


async def _upsert(store: WebhookStore, spec: WebhookSpec, now_ms: int) -> str:
    for _ in range(3):
        total, found = await store.find(WebhookQuery(name=spec.name, limit=2))
        if total > 1:
            raise ValueError(
                f"{total} webhooks are named {spec.name!r}; the file cannot tell which to update"
            )
        if not found:
            try:
                await store.create(spec, now_ms, unique_name=True)
            except NameTakenError:
                continue  # another process created it just now: update that one
            return "created"
        if found[0].spec() == spec:
            return "unchanged"
        if await store.update(found[0].id, spec, now_ms) is not None:
            return "updated"
    raise ValueError(f"webhook {spec.name!r} kept changing while the file was applied")


def load_webhooks_file(path: Path, now_ms: int) -> list[WebhookSpec]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"RELAY_WEBHOOKS_FILE: cannot read {path}: {exc.strerror}") from None
    return parse_webhooks_file(text, str(path), now_ms)


async def apply_webhooks_file(store: WebhookStore, path: Path, now_ms: int) -> dict[str, int]:
    specs = await asyncio.to_thread(load_webhooks_file, path, now_ms)
    counts = await apply_webhooks(store, specs, now_ms)
    log.info("webhooks file applied", path=str(path), **counts)
    return counts
