"""The stand-in servers, each run in its own process: ``python -m bench.servers ceiling|sink``.

- ``ceiling``: the ingest ceiling, a bare aiohttp app that answers 200 without reading the body.
- ``sink``: where deliveries land; verifies nothing, answers 200, counts, and (``--record``)
  notes when each call id arrived, for end-to-end latency.

Both run on uvloop with no access log, as the relay does.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

import orjson
from aiohttp import web

from bench.payload import token_of

ACCEPTED = orjson.dumps({"status": "accepted", "events": 1})


def ceiling_app() -> web.Application:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=ACCEPTED, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


class Sink:
    """Counts deliveries; with ``record``, keeps ``(call id, monotonic ns)`` of each arrival."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0
        self.arrivals: list[tuple[int, int]] = []

    async def receive(self, request: web.Request) -> web.Response:
        now = time.monotonic_ns()
        if self.record:
            token = token_of(await request.read())
            if token is not None:
                self.arrivals.append((token, now))
        if not self.count:
            self.first_ns = now
        self.count += 1
        self.last_ns = now
        return web.Response()

    async def stats(self, _: web.Request) -> web.Response:
        data = {"count": self.count, "first_ns": self.first_ns, "last_ns": self.last_ns}
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def arrivals_view(self, _: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.arrivals), content_type="application/json")

    async def reset(self, _: web.Request) -> web.Response:
        self.count = self.first_ns = self.last_ns = 0
        self.arrivals = []
        return web.Response()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.stats)
        app.router.add_get("/stats", self.stats)
        app.router.add_get("/arrivals", self.arrivals_view)
        app.router.add_post("/reset", self.reset)
        app.router.add_post("/{tail:.*}", self.receive)
        return app


async def serve(app: web.Application, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=["ceiling", "sink"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", action="store_true", help="sink: note each call id's arrival")
    args = parser.parse_args()
    app = ceiling_app() if args.kind == "ceiling" else Sink(args.record).app()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(app, args.port))


if __name__ == "__main__":
    main()
