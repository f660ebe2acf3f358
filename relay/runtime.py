"""Running a process: Redis (embedded or configured), the HTTP server, signals, clean exit."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from relay.app import create_app
from relay.embedded import EmbeddedRedis
from relay.http_server import make_runner
from relay.settings import Settings
from relay.store.connect import RedisClient, connect

log = structlog.get_logger("relay")


@asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[RedisClient]:
    """The configured Redis, or an embedded one started (and stopped) around the block."""
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = await asyncio.to_thread(embedded.running_url)
        if url is not None:
            log.debug("using the embedded redis another relay process started", url=url)
            embedded = None
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = await asyncio.to_thread(embedded.start)
        log.info(
            "embedded redis started (set RELAY_REDIS_URL in production)",
            url=url,
            data_dir=str(embedded.data_dir),
            appendonly=True,
        )
    client = connect(url, cluster=settings.redis_cluster)
    try:
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
            log.info("embedded redis stopped")


async def serve_until_signalled(
    settings: Settings, *, listener: bool, api: bool, workers: int, role: str
) -> None:
    """Serve until SIGINT or SIGTERM, then drain and close everything, in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with redis_for(settings) as redis:
        app = create_app(settings, redis, listener=listener, api=api, workers=workers)
        runner = make_runner(app, settings)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            # What was built to start with stays for the process's life: left out of every
            # garbage collection from here on, so none has to walk it (fewer long pauses).
            gc.collect()
            gc.freeze()
            log.info("relay started", role=role, host=settings.host, port=settings.port, workers=workers)
            await stop.wait()
            log.info("relay stopping", role=role)
        finally:
            await runner.cleanup()
    log.info("relay stopped", role=role)
