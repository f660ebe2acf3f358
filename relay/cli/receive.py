"""``relay receive``: a webhook receiver for trying the relay out and for debugging subscribers.

It listens on loopback, checks each delivery's two signatures as a receiver written for CallFire
and one using the Standard Webhooks library would, answers 200, and prints one JSON line each.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import signal
from typing import Any

import orjson
from aiohttp import web

from relay.cli.common import run_async, whole_number
from relay.signing import (
    CALLFIRE_HEADER,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    callfire_signature,
    standard_webhooks_key,
    standard_webhooks_signature,
)


def verdict(secret: str, headers: Any, body: bytes) -> dict[str, Any]:
    """What a receiver with ``secret`` concludes about one delivery. Pure."""
    callfire = hmac.compare_digest(
        callfire_signature(secret.encode(), body), headers.get(CALLFIRE_HEADER, "")
    )
    msg_id, timestamp = headers.get(WEBHOOK_ID, ""), headers.get(WEBHOOK_TIMESTAMP, "")
    standard = False
    if timestamp.isdigit():
        expected = standard_webhooks_signature(standard_webhooks_key(secret), msg_id, int(timestamp), body)
        offered = headers.get(WEBHOOK_SIGNATURE, "").split()
        standard = any(hmac.compare_digest(expected, sig) for sig in offered)
    return {"webhookId": msg_id, "callfireSignatureOk": callfire, "standardSignatureOk": standard}


async def _serve(port: int, path: str, secret: str) -> int:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        record = verdict(secret, request.headers, body)
        try:
            record["body"] = orjson.loads(body)
        except orjson.JSONDecodeError:
            record["body"] = body.decode(errors="replace")
        print(orjson.dumps(record).decode(), flush=True)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"receiving on http://127.0.0.1:{port}{path}; Ctrl-C to stop", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


def _receive(args: argparse.Namespace) -> int:
    return run_async(lambda: _serve(args.port, args.path, args.secret))


def register(sub: Any) -> None:
    receive = sub.add_parser(
        "receive",
        help="a test receiver that verifies and prints deliveries",
        description="Listen on 127.0.0.1, verify each delivery's X-CallFire-Signature and "
        "webhook-signature with the webhook's secret, answer 200 and print one JSON line each.",
    )
    receive.add_argument(
        "--port", type=whole_number(1, 65535), default=9000, help="port on 127.0.0.1 (default 9000)"
    )
    receive.add_argument("--path", default="/hook", help="path to accept POSTs on (default /hook)")
    receive.add_argument("--secret", required=True, help="the webhook's secret")
    receive.set_defaults(handler=_receive)
