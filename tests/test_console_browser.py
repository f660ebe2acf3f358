"""The console in a real headless browser (Debian's chromium): pages load and show what the store
holds, the live tail updates by itself, a dead letter's replay button delivers it, and a POST from
another site is refused. Real Redis, the relay's workers in process, a real sink."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from relay.app import KEYS, REDIS
from relay.delivery import DELIVERY
from relay.settings import Settings
from relay.store.dead_letters import DeadLetters, LetterQuery
from tests.api_client import create
from tests.browser import basic_authorization, open_browser
from tests.callbacks import call_event, callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Reply, Sink

pytestmark = pytest.mark.slow

SCREENSHOT = os.environ.get("RELAY_CONSOLE_SCREENSHOT")
"""Set to a path to keep a screenshot of the overview (the README's docs/console.png)."""


@dataclass
class Console:
    client: Any
    browser: WebDriver
    sink: Sink

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def go(self, path: str) -> None:
        await asyncio.to_thread(self.browser.get, self.base + path)

    async def text(self, css: str) -> str:
        element = await asyncio.to_thread(self.browser.find_element, By.CSS_SELECTOR, css)
        return str(await asyncio.to_thread(lambda: element.text))

    async def callback(self) -> None:
        body = callback_body()
        resp = await self.client.post("/callbacks/callfire", data=body, headers=signed(body))
        assert resp.status == 200, await resp.text()

    async def until(self, check: Callable[[], Any], within: float = 10.0) -> Any:
        """Poll ``check`` (run in a thread) until it returns something true."""
        deadline = time.monotonic() + within
        while True:
            found = await asyncio.to_thread(check)
            if found:
                return found
            assert time.monotonic() < deadline, "the page never showed it"
            await asyncio.sleep(0.1)


@pytest.fixture
async def console(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> AsyncIterator[Console]:
    sink = await Sink().start()
    browser = await asyncio.to_thread(open_browser, basic_authorization("admin", "secret-pw"))
    try:
        client = await make_client(make_settings(**FAST), workers=1)
        yield Console(client, browser, sink)
    finally:
        await asyncio.to_thread(browser.quit)
        await sink.close()


async def test_webhooks_page_shows_a_webhook_and_its_health(console: Console) -> None:
    """A webhook created over the API, delivered to once, is on the page as healthy."""
    hook = await create(console.client, name="billing", callback=console.sink.url("/billing"))
    await console.client.app[DELIVERY].view.refresh()
    await console.callback()
    await console.sink.wait_for(1, "/billing")
    await console.client.app[DELIVERY].completer.drained()
    await console.go("/console/webhooks")
    row = await console.text(f"#webhook-{hook}")
    assert "billing" in row and "healthy" in row and "UTC" in row


async def test_overview_loads(console: Console) -> None:
    """The overview shows its five figures."""
    await console.go("/console/")
    for tile in ("#callbacks-rate", "#deliveries-rate", "#lag", "#retries", "#dead-letters"):
        assert await console.text(tile)
    assert "Overview" in await asyncio.to_thread(lambda: console.browser.title)


async def test_live_tail_shows_a_delivery_as_it_happens(console: Console) -> None:
    """With the tail open, a new delivery appears in its table without a reload."""
    await create(console.client, name="tail", callback=console.sink.url("/tail"))
    await console.client.app[DELIVERY].view.refresh()
    await console.go("/console/tail")
    await console.until(lambda: console.browser.find_element(By.ID, "tail-state").get_attribute("data-live"))
    await console.callback()
    got = await console.sink.wait_for(1, "/tail")

    def row() -> str | None:
        text = str(console.browser.find_element(By.ID, "tail").text)
        return text if got[0].delivery_id in text else None

    assert "delivered" in await console.until(row)


async def _dead_letter(console: Console, path: str) -> tuple[int, str]:
    """A webhook whose every attempt fails until its letter is dead; its id and the letter's."""
    console.sink.always(path, Reply(500))
    hook = await create(console.client, name="ledger", callback=console.sink.url(path))
    await console.client.app[DELIVERY].view.refresh()
    await console.callback()
    attempts = len(FAST["retry_schedule"].split(",")) + 1
    await console.sink.wait_for(attempts, path)
    letters = DeadLetters(console.client.app[REDIS], console.client.app[KEYS])
    deadline = time.monotonic() + 10
    while not (found := await letters.find(LetterQuery(webhook_id=hook), 0, 1))[1]:
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.05)
    return hook, found[1][0].id


async def test_replay_button_delivers_a_dead_letter(console: Console) -> None:
    """The dead letters page shows the letter; its Replay button delivers it to the (now
    healthy) subscriber, with the webhook-id it had, and the page says it was replayed."""
    hook, letter = await _dead_letter(console, "/ledger")
    first = console.sink.at("/ledger")[0].delivery_id
    console.sink.always("/ledger", Reply(200))
    await console.go(f"/console/dead-letters?webhookId={hook}")
    row = await console.text(f"#letter-{letter}")
    assert "ledger" in row and "HTTP 500" in row
    before = len(console.sink.at("/ledger"))
    button = f"#letter-{letter} button.replay"
    await asyncio.to_thread(lambda: console.browser.find_element(By.CSS_SELECTOR, button).click())
    got = await console.sink.wait_for(before + 1, "/ledger")
    assert got[-1].delivery_id == first
    notice = await console.until(lambda: console.browser.find_element(By.CSS_SELECTOR, ".notice").text)
    assert f"Dead letter {letter} replayed" in notice


async def test_a_cross_site_post_is_refused(console: Console) -> None:
    """A page on another site that posts the replay form (even with a valid token) is refused:
    the browser gets 403 and the letter stays, undelivered."""
    _, letter = await _dead_letter(console, "/victim")
    console.sink.always("/victim", Reply(200))
    await console.go("/console/dead-letters")
    token = await asyncio.to_thread(
        lambda: console.browser.find_element(By.CSS_SELECTOR, 'input[name="csrf"]').get_attribute("value")
    )
    before = len(console.sink.at("/victim"))
    attacker = web.Application()
    page = (
        f'<form id="f" method="post" action="{console.base}/console/dead-letters/{letter}/replay">'
        f'<input type="hidden" name="csrf" value="{token}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )

    async def lure(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    attacker.router.add_get("/", lure)
    server = TestServer(attacker, host="localhost")  # another site than 127.0.0.1
    await server.start_server()
    try:
        await asyncio.to_thread(console.browser.get, str(server.make_url("/")))
        refused = await console.until(lambda: "refused" in console.browser.page_source.lower())
        assert refused
    finally:
        await server.close()
    assert "cross-site request refused" in await asyncio.to_thread(lambda: console.browser.page_source)
    assert await DeadLetters(console.client.app[REDIS], console.client.app[KEYS]).get(letter)
    await asyncio.sleep(0.5)
    assert len(console.sink.at("/victim")) == before
    if SCREENSHOT:  # the overview with a failing webhook and its dead letter
        await console.go("/console/")
        await asyncio.to_thread(console.browser.save_screenshot, SCREENSHOT)


async def test_dry_run_form_shows_what_a_filter_would_receive(console: Console) -> None:
    """The dry run page, filled and submitted in the browser, counts the matching retained events."""
    await console.callback()
    await console.go("/console/dry-run")

    def submit() -> None:
        form = console.browser.find_element(By.ID, "dry-run")
        form.find_element(By.NAME, "filter").send_keys('{"resource.finalCallResult": "LA"}')
        since = form.find_element(By.NAME, "since")
        since.clear()
        since.send_keys("0")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    await asyncio.to_thread(submit)
    counts = await console.until(lambda: console.browser.find_elements(By.ID, "dry-run-counts"))
    assert "1 of 1 scanned" in await asyncio.to_thread(lambda: counts[0].text)
    assert '"finalCallResult":"LA"' in await console.text("#dry-run-items")


async def test_event_search_shows_where_an_event_went(console: Console) -> None:
    """Searching the form by a CallFire resource id finds its event, delivered to the webhook."""
    hook = await create(console.client, name="search", callback=console.sink.url("/search"))
    await console.client.app[DELIVERY].view.refresh()
    call_id = 2**60 + 17
    body = callback_body(call_event(call_id=call_id))
    assert (await console.client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
    await console.sink.wait_for(1, "/search")
    await console.client.app[DELIVERY].completer.drained()
    await console.go("/console/events")

    def search() -> None:
        field = console.browser.find_element(By.NAME, "resourceId")
        field.send_keys(str(call_id))
        field.submit()

    await asyncio.to_thread(search)
    found = await console.until(lambda: console.browser.find_element(By.ID, "found").text)
    assert found.startswith("1 event found")
    section = await console.text("section.event")
    assert str(call_id) in section and f"{hook} search" in section and "delivered" in section
