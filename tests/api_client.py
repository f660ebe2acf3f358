"""Calling the Webhooks API in tests: credentials that match the ``settings`` fixture, a valid body."""

from __future__ import annotations

import base64
from typing import Any


def basic(user: str, password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


CREDENTIALS = ("admin", "secret-pw")
"""The API's user and password in tests/conftest.py's settings and its ``relay_api`` process."""
AUTH = basic(*CREDENTIALS)


def webhook_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "calls",
        "resource": "OutboundCall",
        "events": ["Finished"],
        "callback": "http://127.0.0.1:9/hook",
        "secret": "hook-secret-value",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


async def create(client: Any, **overrides: Any) -> int:
    """POST a webhook (``field=...`` leaves a field out); its id."""
    resp = await client.post("/v2/webhooks", json=webhook_body(**overrides), headers=AUTH)
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def get_json(client: Any, path: str, status: int = 200, **params: Any) -> Any:
    resp = await client.get(path, params=params, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()
