"""The stand-in servers, each run in its own process: ``python -m bench.servers ceiling|sink``.

- ``ceiling``: the ingest ceiling, a bare aiohttp app that answers 200 without reading the body.
- ``sink``: where deliveries land; verifies nothing, answers 200, counts, and (``--record``)
  notes when each call id arrived, for end-to-end latency. As a realistic subscriber
  (``--delay-ms 50 --fail-every 100``) it answers each request after ``--delay-ms``, and answers
  500 to the first delivery of every call id divisible by ``--fail-every`` (a deterministic 1 %
  of first attempts; the retry is answered 200): the arrival noted for such a call id is its
  retry's.

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


def fails_first(token: int | None, fail_every: int) -> bool:
    """Whether the realistic subscriber answers 500 to this call id's first delivery. Pure."""
    return fail_every > 0 and token is not None and token % fail_every == 0


class Sink:
    """Counts deliveries answered 2xx; with ``record``, keeps ``(call id, monotonic ns)`` of each
    such arrival. ``delay``: seconds before each answer; ``fail_every``: see ``fails_first``."""

    def __init__(self, record: bool, delay: float = 0.0, fail_every: int = 0) -> None:
        self.record = record or fail_every > 0
        self.delay = delay
        self.fail_every = fail_every
        self.failed: set[int] = set()
        """Call ids answered 500 once: their next delivery is answered 200."""
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0
        self.arrivals: list[tuple[int, int]] = []

    async def receive(self, request: web.Request) -> web.Response:
        now = time.monotonic_ns()
        token = token_of(await request.read()) if self.record else None
        if self.delay:
            await asyncio.sleep(self.delay)
        if fails_first(token, self.fail_every) and token not in self.failed:
            self.failed.add(token)  # type: ignore[arg-type]
            return web.Response(status=500)
        if token is not None:
            self.arrivals.append((token, now))
        if not self.count:
            self.first_ns = now
        self.count += 1
        self.last_ns = now
        return web.Response()

    async def stats(self, _: web.Request) -> web.Response:
        data = {
            "count": self.count,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "failed": len(self.failed),
        }
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def arrivals_view(self, _: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.arrivals), content_type="application/json")

    async def reset(self, _: web.Request) -> web.Response:
        self.count = self.first_ns = self.last_ns = 0
        self.arrivals = []
        self.failed = set()
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
    parser.add_argument("--delay-ms", type=float, default=0.0, help="sink: answer after this long")
    parser.add_argument(
        "--fail-every",
        type=int,
        default=0,
        help="sink: 500 to the first delivery of call ids divisible by this",
    )
    args = parser.parse_args()
    sink = Sink(args.record, args.delay_ms / 1000, args.fail_every)
    app = ceiling_app() if args.kind == "ceiling" else sink.app()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(app, args.port))


if __name__ == "__main__":
    main()
