"""A TCP proxy on loopback that delays and cuts connections, to stand between relay and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    """What the proxy does to each chunk going either way."""

    delay: float = 0.0
    """Seconds added before forwarding a chunk (with probability ``delay_rate``)."""
    delay_rate: float = 0.0
    reset_rate: float = 0.0
    """Probability that a chunk is dropped and both sides are cut (a reset mid-command)."""
    rand: random.Random = field(default_factory=lambda: random.Random(7))


class FlakyProxy:
    def __init__(self, target_port: int, faults: Faults | None = None) -> None:
        self.target_port = target_port
        self.faults = faults or Faults()
        self.server: asyncio.Server | None = None
        self.resets = 0
        self.delays = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> FlakyProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        done = asyncio.Event()
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst, done, (writer, up_writer)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        done: asyncio.Event,
        both: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        faults = self.faults
        try:
            while not done.is_set():
                chunk = await src.read(65536)
                if not chunk:
                    break
                if faults.delay and faults.rand.random() < faults.delay_rate:
                    self.delays += 1
                    await asyncio.sleep(faults.delay)
                if faults.rand.random() < faults.reset_rate:
                    self.resets += 1
                    for w in both:
                        transport = w.transport
                        transport.abort()
                    break
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            done.set()
            for w in both:
                w.close()
