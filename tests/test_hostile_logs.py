"""No secret, signature, credential or message body in any log line or error body: a variety of
bad (and one good) requests are sent, everything logged is captured as rendered, and grepped."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER, callfire_signature
from tests import logstate
from tests.callbacks import SECRET, call_event, callback_body, signed
from tests.hostile import RawResponse, exchange, hang_up, request_head, served

ROTATED = "rotated-secret-2b9e"
BOUND = "bound-secret-3f07"
PASSWORD = "api-password-51d2"
MARKER = "PRIVATE-MESSAGE-BODY-7c1f"
HEADER_MARKER = "PRIVATE-HEADER-VALUE-e44a"


@pytest.fixture
def rendered_logs() -> Iterator[Callable[[], str]]:
    """structlog configured as a process configures it (JSON, debug), its lines kept in memory."""
    with logstate.rendered_logs() as rendered:
        yield rendered


def marked_body(**extra: Any) -> bytes:
    event = call_event()
    event["resource"]["message"] = MARKER
    return callback_body(event, **extra)


def bad_requests() -> list[bytes]:
    """Raw requests, each refused for a different reason, every one carrying something private."""
    body = marked_body()
    wrong = {CALLFIRE_HEADER: callfire_signature(b"not-the-secret", body)}
    not_json = f"{MARKER} is not JSON".encode()
    no_events = orjson.dumps({"webhookName": MARKER, "events": "none"})
    bad_event = orjson.dumps({"events": [{"resource": {"message": MARKER}}]})
    bad_escape = b'{"events": [{"message": "' + MARKER.encode() + b' \\q"}]}'
    bound_elsewhere = marked_body(webhook_id=1001)
    credentials = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    wrong_credentials = base64.b64encode(f"admin:{PASSWORD}-wrong".encode()).decode()
    return [
        request_head(headers=wrong, length=len(body)) + body,
        request_head(length=len(body)) + body,
        request_head(headers={CALLFIRE_HEADER: HEADER_MARKER}, length=len(body)) + body,
        request_head(headers=signed(bound_elsewhere, BOUND), length=len(bound_elsewhere)) + bound_elsewhere,
        request_head(headers=signed(not_json), length=len(not_json)) + not_json,
        request_head(headers=signed(no_events), length=len(no_events)) + no_events,
        request_head(headers=signed(bad_event), length=len(bad_event)) + bad_event,
        request_head(headers=signed(bad_escape), length=len(bad_escape)) + bad_escape,
        request_head(headers={"Content-Encoding": "gzip", **signed(body)}, length=len(body)) + body,
        request_head(headers=signed(body), length=10_000_000),
        request_head(headers={CALLFIRE_HEADER: HEADER_MARKER + "\x01"}, length=0),
        request_head(headers={"Transfer-Encoding": "chunked", **signed(body)})
        + f"zz\r\n{MARKER}\r\n0\r\n\r\n".encode(),
        request_head("/v2/webhooks", {"Authorization": f"Basic {credentials}"}, method="GET"),
        request_head("/v2/webhooks", {"Authorization": f"Basic {wrong_credentials}"}, method="GET"),
        request_head("/v2/webhooks", {"Authorization": f"Bearer {HEADER_MARKER}"}, method="GET"),
        request_head(f"/callbacks/callfire?secret={SECRET}", signed(body), length=len(body)) + body,
    ]


def forbidden(requests: list[bytes]) -> list[str]:
    """Every string that must never be logged or answered: secrets, credentials, signatures sent,
    and the private values inside bodies and headers."""
    sent = [
        line.split(":", 1)[1].strip()
        for raw in requests
        for line in raw.decode("latin-1").split("\r\n")
        if line.lower().startswith(("x-callfire-signature:", "authorization:"))
    ]
    return [SECRET, ROTATED, BOUND, PASSWORD, MARKER, HEADER_MARKER, *sent]


async def cut_short(port: int) -> None:
    """A signed head promising 1000 bytes, 40 of them sent, then the client hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = marked_body()
    writer.write(request_head(headers=signed(body), length=len(body) + 1000) + body[:40])
    await writer.drain()
    await asyncio.sleep(0.05)
    await hang_up(writer)
    del reader


async def test_nothing_private_is_logged_or_answered(
    make_settings: Callable[..., Settings],
    redis: Any,
    rendered_logs: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Across 16 kinds of bad request, a rate-limited client and an accepted callback, no log
    line and no error body holds a secret, a credential, a signature or a body's content."""
    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        callfire_secrets=f"{SECRET},{ROTATED},777:{BOUND}",
        api_credentials=f"admin:{PASSWORD}",
        auth_failure_limit=6,
        log_level="debug",
    )
    requests = bad_requests()
    good = marked_body()
    answers: list[RawResponse] = []
    async with served(settings, redis) as server:
        for raw in requests:
            answers.append(await exchange(server.port, raw))
        for _ in range(8):
            answers.append(await exchange(server.port, requests[0], local_host="127.0.0.2"))
        await cut_short(server.port)
        answers.append(
            await exchange(server.port, request_head(headers=signed(good), length=len(good)) + good)
        )
    logged = rendered_logs() + caplog.text
    assert answers[-1].status == 200
    assert {a.status for a in answers[:-1]} >= {400, 401, 413, 415, 429}
    assert "callback refused" in logged and "malformed http request" in logged
    for needle in forbidden(requests):
        assert needle not in logged
        assert all(needle.encode() not in answer.body for answer in answers)
