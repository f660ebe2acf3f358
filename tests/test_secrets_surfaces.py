"""Webhook secrets never appear anywhere the relay shows things: API answers (error bodies
included), logs, metrics, dead letters (over the API too), the console (its pages and its live tail),
`relay events tail`, `relay webhooks` and `relay dead-letters`. Nor do their sealed tokens.

One scenario runs every path that handles a secret, with RELAY_SECRET_KEYS set: webhooks created,
changed and refused through the API; deliveries that succeed, retry and die; a webhook whose secret
no configured key opens; then everything those surfaces show is searched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet

from relay.cli import main
from relay.secrets import SecretKeys
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.api_client import AUTH, create, webhook_body
from tests.callbacks import call_event
from tests.delivery_harness import Harness, open_harness
from tests.logstate import rendered_logs
from tests.sink import Reply

KEY, OTHER = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRETS = [
    "first-secret-0e5a7c",
    "changed-secret-d41b93",
    "failing-secret-77f0c2",
    "refused-secret-a9e316",
    "unreadable-secret-3c58bd",
]
TOKEN_PREFIX = "gAAAAA"
"""Every Fernet token starts so (version byte, then a timestamp)."""


async def api_answers(client: TestClient[Any, Any], h: Harness) -> list[str]:
    """Webhooks created, changed, refused and read through the API; every answer's body."""
    bodies: list[str] = []
    first = await create(client, callback=h.sink.url("/ok"), secret=SECRETS[0])
    await create(client, callback=h.sink.url("/fail"), secret=SECRETS[2])
    changes = {"secret": SECRETS[1], "name": "renamed"}
    for method, path, body in [
        ("PUT", f"/v2/webhooks/{first}", changes),
        ("POST", "/v2/webhooks", webhook_body(callback="not a url", secret=SECRETS[3])),
        ("POST", "/v2/webhooks", webhook_body(secret=[SECRETS[3]])),
        ("POST", "/v2/webhooks", webhook_body(secret=SECRETS[3] * 100)),
        ("PUT", f"/v2/webhooks/{first}", {"secret": SECRETS[3], "resource": "Nope"}),
    ]:
        resp = await client.request(method, path, json=body, headers=AUTH)
        bodies.append(f"{resp.status} {await resp.text()}")
    return bodies


async def reads(client: TestClient[Any, Any]) -> list[str]:
    bodies = []
    for path in ["/v2/webhooks", "/v2/webhooks/1", "/v2/webhooks/2", "/v2/webhooks/3", "/metrics"]:
        resp = await client.get(path, headers=AUTH)
        bodies.append(await resp.text())
    for webhook_id in (1, 2, 3):
        resp = await client.get(f"/v2/webhooks/{webhook_id}/deliveries", headers=AUTH)
        bodies.append(await resp.text())
    letters = await (await client.get("/v2/dead-letters", headers=AUTH)).json()
    assert letters["totalCount"] == 2
    for letter in letters["items"]:
        resp = await client.get(f"/v2/dead-letters/{letter['id']}", headers=AUTH)
        bodies.append(await resp.text())
    return [*bodies, str(letters)]


async def console(client: TestClient[Any, Any]) -> str:
    """The console's pages, and what its live tail streams (every attempt kept, from the start)."""
    pages = []
    for path in ["/console/", "/console/webhooks", "/console/dead-letters", "/console/tail"]:
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 200, path
        pages.append(await resp.text())
    resp = await client.get("/console/tail/stream?since=0", headers=AUTH)
    events = 0
    try:
        async with asyncio.timeout(5):
            while events < 7:  # every attempt: 1 delivered, 3 failed, 3 held
                line = (await resp.content.readline()).decode()
                events += line == "event: attempt\n"
                pages.append(line)
    finally:
        resp.close()
    return "".join(pages)


def cli_outputs(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """What `relay events tail`, `relay webhooks` and `relay dead-letters` print (their logs too)."""
    monkeypatch.setenv("RELAY_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("RELAY_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("RELAY_PARTITIONS", str(settings.partitions))
    monkeypatch.setenv("RELAY_SECRET_KEYS", KEY)
    capsys.readouterr()
    commands = [
        ["events", "tail", "-n", "100"],
        ["webhooks", "list"],
        ["webhooks", "list", "--json"],
        *[["webhooks", "show", str(i)] for i in (1, 2, 3)],
        ["dead-letters", "list", "--json"],
    ]
    for command in commands:
        assert main(command) == 0, command
    shown = capsys.readouterr()
    letters = [line.split('"id":"')[1].split('"')[0] for line in shown.out.splitlines() if '"kind"' in line]
    assert len(letters) == 2, shown.out
    for letter in letters:
        assert main(["dead-letters", "show", letter]) == 0
    more = capsys.readouterr()
    return shown.out + shown.err + more.out + more.err


async def test_no_secret_or_token_on_any_surface(
    make_settings: Callable[..., Settings],
    redis: RedisClient,
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After every path that handles a secret, no secret and no sealed token is in any answer,
    log line, metric, dead letter or command output; the deliveries did happen."""
    surfaces: dict[str, str] = {}
    async with open_harness(make_settings, redis, secret_keys=KEY) as h:
        h.sink.always("/fail", Reply(500))
        with rendered_logs() as logged:
            client = await make_client(h.settings)
            surfaces["API answers"] = "\n".join(await api_answers(client, h))
            h.store.secret_keys = SecretKeys.parse(OTHER)  # written by a process with another key
            await h.webhook("/unreadable", secret=SECRETS[4])
            await h.start()
            await h.publish(call_event())
            await h.sink.wait_for(1, "/ok")
            await h.dead_letters(2)
            await h.settled()
            surfaces["API reads and metrics"] = "\n".join(await reads(client))
            surfaces["console"] = await console(client)
            surfaces["logs"] = logged()
        assert len(h.sink.at("/fail")) == 3 and h.sink.at("/unreadable") == []
        surfaces["commands"] = await asyncio.to_thread(cli_outputs, h.settings, monkeypatch, capsys)
    assert "secret-unreadable" in surfaces["commands"]  # the search sees the dead letters
    assert "RELAY_SECRET_KEYS" in surfaces["console"]  # and the held attempts, in the tail
    assert "webhook secret unreadable" in surfaces["logs"]
    for surface, text in surfaces.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {surface}"
        assert TOKEN_PREFIX not in text, f"a sealed token in {surface}"
