"""What every sub-command shares: its error type, settings, and running a coroutine."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from relay import logs
from relay.keys import Keys
from relay.runtime import redis_url_in_use
from relay.settings import Settings
from relay.store.connect import RedisClient, connect


class CliError(Exception):
    """A failure to report as one line and a non-zero exit."""


def whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``least`` (to ``most``); else argparse's one-line
    usage error and exit 2, before anything reaches Redis."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < least or (most is not None and value > most):
            span = f"from {least} to {most}" if most is not None else f"at least {least}"
            raise argparse.ArgumentTypeError(f"must be {span}, not {value}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse ``type``: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


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


@asynccontextmanager
async def running_redis(settings: Settings) -> AsyncIterator[RedisClient]:
    """The Redis a relay with these settings uses: RELAY_REDIS_URL, else the embedded one a
    running ``relay run`` keeps on RELAY_DATA_DIR. Never starts one: an empty Redis would answer
    every question with "none"."""
    url = await redis_url_in_use(settings)
    if url is None:
        raise CliError(
            f"no relay is running on RELAY_DATA_DIR={settings.data_dir} (no embedded Redis "
            "there): start one with `relay run`, or set RELAY_REDIS_URL"
        )
    client = connect(url, cluster=settings.redis_cluster)
    try:
        yield client
    finally:
        await client.aclose()


T = TypeVar("T")


def on_redis(
    build: Callable[[RedisClient, Keys, Settings], T],
    action: Callable[[T, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    """A sub-command's handler: load the settings, open the Redis the relay uses, and run
    ``action`` on what ``build`` makes of it (a store of the relay's, from the client, the keys
    and the settings)."""

    def handler(args: argparse.Namespace) -> int:
        settings = load_settings()

        async def run() -> int:
            async with running_redis(settings) as redis:
                keys = Keys(settings.key_prefix, settings.partitions)
                return await action(build(redis, keys, settings), args)

        return run_async(run)

    return handler
