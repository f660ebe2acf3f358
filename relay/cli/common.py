"""What every sub-command shares: its error type, settings, and running a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from relay import logs
from relay.settings import Settings


class CliError(Exception):
    """A failure to report as one line and a non-zero exit."""


def load_settings(**overrides: Any) -> Settings:
    settings = Settings.load(**overrides)
    logs.configure(settings)
    return settings


def run_async(coro_fn: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    """Run on uvloop where it is installed."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro_fn()) or 0
