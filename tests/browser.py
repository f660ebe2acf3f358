"""A real headless browser for the console's tests: Debian's chromium driven by chromium-driver
through selenium. Where they are not installed the browser tests skip, except under ``CI=true``,
where they fail (``.ci/run`` installs both).

Selenium's calls block, so async tests make them through ``asyncio.to_thread`` while the relay
and the sinks keep running on the test's event loop.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _first(paths: tuple[str, ...], name: str) -> str | None:
    found = next((p for p in paths if Path(p).exists()), None)
    return found or shutil.which(name)


def open_browser(authorization: str | None = None) -> webdriver.Chrome:
    """Headless chromium; every request it sends carries ``authorization`` when given (as HTTP
    Basic remembered for the site would)."""
    binary, driver = _first(CHROMIUM, "chromium"), _first(DRIVER, "chromedriver")
    if binary is None or driver is None:
        message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,900",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    browser.set_page_load_timeout(20)
    if authorization is not None:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": authorization}})
    return browser


def basic_authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def closing(browser: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    try:
        yield browser
    finally:
        browser.quit()
