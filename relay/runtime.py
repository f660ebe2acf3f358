"""Running a process: Redis (embedded or configured), the HTTP server, signals, clean exit."""

from __future__ import annotations

import asyncio
import errno
import gc
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web

from relay.app import ADMIN, READINESS, create_app
from relay.embedded import EmbeddedRedis
from relay.health import Checks
from relay.http_server import Runner, make_runner
from relay.settings import Settings
from relay.store.connect import RedisClient, connect
from relay.tracing import Tracing

log = structlog.get_logger("relay")


async def redis_url_in_use(settings: Settings) -> str | None:
    """RELAY_REDIS_URL; else the embedded Redis a relay process runs on RELAY_DATA_DIR; else None."""
    if settings.redis_url is not None:
        return settings.redis_url
    url = await asyncio.to_thread(EmbeddedRedis(settings.data_dir).running_url)
    if url is not None:
        log.debug("using the embedded redis a relay process started", url=url)
    return url


@asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[RedisClient]:
    """The configured Redis, or the embedded one running on RELAY_DATA_DIR, or an embedded one
    started (and stopped) around the block."""
    embedded: EmbeddedRedis | None = None
    url = await redis_url_in_use(settings)
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


EXIT_STALLED = 3
"""The exit code of a process that stopped because a loop stalled, for its supervisor to restart."""
WATCH_EVERY = 1.0
"""Seconds between looks at the process's liveness."""
STALLED_CLEANUP = 10.0
"""Past RELAY_SHUTDOWN_GRACE, how long a stalled process may take to close before it gives up."""


async def watch(liveness: Checks, stop: asyncio.Event, every: float = WATCH_EVERY) -> None:
    """Once a liveness check fails: log it and set ``stop``."""
    while True:
        await asyncio.sleep(every)
        problems = liveness.problems()
        if problems:
            log.error("relay stalled; exiting with code 3 to be restarted", problems=problems)
            stop.set()
            return


class CannotListen(OSError):
    """A port the process cannot listen on; its message names the settings and says why."""


@dataclass(frozen=True)
class Bind:
    """Where one application listens, and the names of the settings that say so."""

    host_setting: str
    host: str
    port_setting: str
    port: int

    def refused(self, exc: OSError) -> CannotListen:
        """The one line to stop with when the bind fails. Pure."""
        where = f"{self.host_setting}={self.host}, {self.port_setting}={self.port}"
        if isinstance(exc, socket.gaierror):
            why = f"{self.host_setting} names no address this machine resolves ({exc.strerror})"
        elif exc.errno == errno.EADDRINUSE:
            why = f"port {self.port} is already in use (another process listens there)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = f"{self.host} is not an address of this machine"
        elif exc.errno == errno.EACCES:
            why = f"not allowed to listen on port {self.port} (below 1024 needs privileges)"
        else:
            why = " ".join(str(exc).split()) or type(exc).__name__
        return CannotListen(f"cannot listen at {where}: {why}")


async def listen(runner: Runner, bind: Bind, *, reuse_port: bool = False) -> None:
    """Start serving ``runner`` where ``bind`` says; a failure is a ``CannotListen``."""
    try:
        await web.TCPSite(runner, bind.host, bind.port, reuse_port=reuse_port).start()
    except OSError as exc:
        raise bind.refused(exc) from None


async def serve_until_signalled(
    settings: Settings, *, listener: bool, api: bool, workers: int, role: str, reuse_port: bool = False
) -> int:
    """Serve until SIGINT or SIGTERM (exit code 0) or a stall (3), then drain and close
    everything, in order. ``reuse_port``: bind with SO_REUSEPORT, so that several processes on
    one host share the port (the kernel spreads the connections between them)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tracing = Tracing.from_environment()
    async with redis_for(settings) as redis:
        app = create_app(settings, redis, listener=listener, api=api, workers=workers, tracing=tracing)
        served = [(app, Bind("RELAY_HOST", settings.host, "RELAY_PORT", settings.port))]
        if ADMIN in app and settings.admin_port is not None:
            host_name = "RELAY_ADMIN_HOST" if settings.admin_host else "RELAY_HOST"
            served.append(
                (app[ADMIN], Bind(host_name, settings.admin_bind, "RELAY_ADMIN_PORT", settings.admin_port))
            )
        runners: list[Runner] = []
        watchdog = asyncio.create_task(watch(app[READINESS].liveness, stop), name="watchdog")
        try:
            for application, bind in served:
                runner = make_runner(application, settings)
                runners.append(runner)
                await runner.setup()
                await listen(runner, bind, reuse_port=reuse_port)
            # What was built to start with stays for the process's life: left out of every
            # garbage collection from here on, so none has to walk it (fewer long pauses).
            gc.collect()
            gc.freeze()
            log.info(
                "relay started",
                role=role,
                host=settings.host,
                port=settings.port,
                admin_port=settings.admin_port,
                workers=workers,
                reuse_port=reuse_port,
            )
            await stop.wait()
            log.info("relay stopping", role=role)
        finally:
            stalled = watchdog.done() and not watchdog.cancelled()
            watchdog.cancel()
            try:
                async with asyncio.timeout(settings.shutdown_grace + STALLED_CLEANUP if stalled else None):
                    for runner in runners:
                        await runner.cleanup()
            except TimeoutError:
                log.error("relay did not close in time; exiting anyway", role=role)
            await asyncio.to_thread(tracing.shutdown)  # the spans still buffered are exported
    log.info("relay stopped", role=role)
    return EXIT_STALLED if stalled else 0
