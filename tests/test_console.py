"""The console's pages over HTTP: behind the API's credentials, rendered from the store, secrets
never on them, the live tail as server-sent events. Real Redis; deliveries to a real sink."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from relay.delivery import DELIVERY
from relay.keys import Keys
from relay.settings import Settings
from relay.store.attempts import Attempts, attempt_record
from tests.api_client import AUTH, basic, create
from tests.callbacks import callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Sink


async def _page(client: Any, path: str, status: int = 200) -> str:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == status, await resp.text()
    return str(await resp.text())


async def _record(redis: Any, keys: Keys, webhook_id: int, *outcomes: tuple[str, int | None]) -> None:
    """Attempts in the webhook's log, oldest first, one ms apart, as the delivery completer writes them."""
    now = int(time.time() * 1000) - len(outcomes)
    records = [
        attempt_record(
            at=now + n, delivery_id=f"msg_x_{n}", attempt=n + 1, outcome=outcome, status=status,
            seconds=0.01, error=None if status else "cannot connect: refused",
        )
        for n, (outcome, status) in enumerate(outcomes)
    ]  # fmt: skip
    await Attempts(redis=redis, keys=keys, kept=50).add(webhook_id, records)


async def test_pages_need_the_api_credentials(client: TestClient[Any, Any]) -> None:
    """Without credentials a page is 401 with a Basic challenge; with wrong ones, 401 too."""
    for headers in ({}, basic("admin", "wrong")):
        resp = await client.get("/console/", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_console_is_forbidden_without_configured_credentials(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """With RELAY_API_CREDENTIALS unset the console answers 403, as the API does."""
    client = await make_client(make_settings(api_credentials=""))
    assert (await client.get("/console/", headers=AUTH)).status == 403


async def test_bare_path_redirects_to_the_overview(client: TestClient[Any, Any]) -> None:
    """``/console`` sends the browser on to ``/console/``."""
    resp = await client.get("/console", headers=AUTH, allow_redirects=False)
    assert resp.status == 308
    assert resp.headers["Location"] == "/console/"


async def test_overview_shows_the_figures(client: TestClient[Any, Any]) -> None:
    """The overview names each figure the issue asks for."""
    page = await _page(client, "/console/")
    for label in ("callbacks/s", "deliveries/s", "lag", "retry backlog", "dead letters"):
        assert label in page
    assert 'http-equiv="refresh"' in page


async def test_overview_counts_callbacks_per_second(client: TestClient[Any, Any]) -> None:
    """Callbacks accepted between two views show as a positive rate."""
    await _page(client, "/console/")
    for _ in range(5):
        body = callback_body()
        assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
    await asyncio.sleep(1.0)
    page = await _page(client, "/console/")
    figure = re.search(r'id="callbacks-rate"><span class="figure">([0-9.]+)<', page)
    assert figure is not None and float(figure.group(1)) > 0


async def test_webhooks_page_shows_health(client: TestClient[Any, Any], redis: Any, keys: Keys) -> None:
    """Last success, last failure with its status, and the failure streak since the success."""
    hook = await create(client, name="billing")
    await _record(redis, keys, hook, ("delivered", 200), ("retry", 503), ("retry", 503))
    page = await _page(client, "/console/webhooks")
    row = page[page.index(f'id="webhook-{hook}"') :].split("</tr>")[0]
    assert "billing" in row and "failing" in row and "HTTP 503" in row
    assert re.search(r'<td class="num">2</td>', row)
    assert row.count("UTC") == 2  # a last success and a last failure


async def test_secrets_never_appear(client: TestClient[Any, Any], redis: Any, keys: Keys) -> None:
    """Neither the webhook's secret, nor a password or token in its callback URL, nor the API's
    credentials are on any page."""
    url = "http://user:url-password@127.0.0.1:9/hook?token=query-token"
    hook = await create(client, callback=url, secret="hook-secret-value")
    await _record(redis, keys, hook, ("delivered", 200))
    for path in ("/console/", "/console/webhooks", "/console/tail"):
        page = await _page(client, path)
        for secret in ("hook-secret-value", "url-password", "query-token", "secret-pw"):
            assert secret not in page, (path, secret)
    assert "user:***@127.0.0.1:9/hook?token=***" in await _page(client, "/console/webhooks")


async def test_pages_are_not_framed_nor_cached(client: TestClient[Any, Any]) -> None:
    """Each page forbids framing and caching, and allows only the console's own scripts."""
    resp = await client.get("/console/webhooks", headers=AUTH)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_static_files_are_served(client: TestClient[Any, Any]) -> None:
    """The stylesheet and the script come from the relay itself."""
    for name, kind in (("console.css", "text/css"), ("console.js", "javascript")):
        resp = await client.get(f"/console/static/{name}", headers=AUTH)
        assert resp.status == 200 and kind in resp.headers["Content-Type"]


async def test_tail_streams_each_new_attempt(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """A callback delivered after the stream opened arrives on it as an ``attempt`` event."""
    sink = await Sink().start()
    try:
        client = await make_client(make_settings(**FAST), workers=1)
        hook = await create(client, callback=sink.url("/tail"))
        await client.app[DELIVERY].view.refresh()
        since = int(time.time() * 1000)
        resp = await client.get(f"/console/tail/stream?since={since}", headers=AUTH)
        assert resp.headers["Content-Type"] == "text/event-stream"
        body = callback_body()
        assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
        await sink.wait_for(1, "/tail")
        async with asyncio.timeout(10):
            while await resp.content.readline() != b"event: attempt\n":
                pass
            data = (await resp.content.readline()).decode()
        assert f'"webhookId":{hook}' in data and '"outcome":"delivered"' in data
        assert sink.at("/tail")[0].delivery_id in data
        resp.close()
    finally:
        await sink.close()
