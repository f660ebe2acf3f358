"""Logs: JSON lines in production, readable lines in a terminal, and nothing private in either."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import structlog

from relay import logs
from relay.clock import Clock
from relay.settings import Settings
from relay.store.connect import RedisClient
from tests.callbacks import SECRET, signed
from tests.logstate import saved_logging
from tests.sink import Sink
from tests.traffic import (
    BOUND,
    HOOK_SECRET,
    MARKER,
    PASSWORD,
    api_calls,
    callbacks_of_every_kind,
    marked_body,
    private_settings,
    running_relay,
    subscribe,
)


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Settings], io.StringIO]]:
    """Configure logging as a process does (``relay.logs.configure``) with stderr kept in memory:
    the relay's lines and the standard library's (aiohttp, redis), the latter at every level."""
    out = io.StringIO()

    def configure(settings: Settings) -> io.StringIO:
        monkeypatch.setattr(sys, "stderr", out)
        logs.configure(settings)
        logging.getLogger().setLevel(logging.DEBUG)
        return out

    with saved_logging():
        yield configure


async def test_json_mode_writes_one_json_object_per_line(
    capture: Callable[[Settings], io.StringIO], make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """With RELAY_LOG_FORMAT=json every line is a JSON object with event, level and timestamp."""
    settings = make_settings(log_format="json")
    out = capture(settings)
    async with running_relay(settings, redis) as relay:
        body = marked_body()
        assert await relay.post_callback(body, signed(body)) == 200
    lines = out.getvalue().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert records and all({"event", "level", "timestamp"} <= r.keys() for r in records)
    accepted = [r for r in records if r["event"] == "callback accepted"]
    assert len(accepted) == 1 and accepted[0]["callback"]


async def test_console_mode_is_for_people(
    capture: Callable[[Settings], io.StringIO], make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """With RELAY_LOG_FORMAT=console lines are plain text, one per callback."""
    settings = make_settings(log_format="console")
    out = capture(settings)
    async with running_relay(settings, redis) as relay:
        body = marked_body()
        assert await relay.post_callback(body, signed(body)) == 200
    accepted = [line for line in out.getvalue().splitlines() if "callback accepted" in line]
    assert len(accepted) == 1 and not accepted[0].startswith("{")
    assert "callback=" in accepted[0]


def private_values(relay_headers: list[str], sink: Sink) -> dict[str, str]:
    """Everything that must never reach a log line, by what it is."""
    found = {
        "callfire secret": SECRET,
        "bound callfire secret": BOUND,
        "api password": PASSWORD,
        "api basic credentials": base64.b64encode(f"admin:{PASSWORD}".encode()).decode(),
        "webhook secret": HOOK_SECRET,
        "message body": MARKER,
    }
    for n, value in enumerate(relay_headers):
        found[f"header sent #{n}"] = value.removeprefix("Basic ")
    for n, got in enumerate(sink.received):
        found[f"delivery #{n} callfire signature"] = got.headers["x-callfire-signature"]
        for m, sig in enumerate(got.headers["webhook-signature"].split()):
            found[f"delivery #{n} standard signature {m}"] = sig.removeprefix("v1,")
    return found


async def test_no_secret_signature_credential_or_body_is_ever_logged(
    capture: Callable[[Settings], io.StringIO], make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """Callbacks of every kind, API calls and deliveries (a retry, a 410) at debug level: the
    captured output holds none of the secrets, signatures, credentials or bodies involved."""
    settings = private_settings(make_settings)
    out = capture(settings)
    sink = await Sink().start()
    try:
        async with running_relay(settings, redis, workers=1) as relay:
            await subscribe(relay, sink)
            statuses = await callbacks_of_every_kind(relay)
            await api_calls(relay)
            await sink.wait_for(2, "/hook")
            await sink.wait_for(1, "/gone")
            sent = relay.sent_headers
    finally:
        await sink.close()
    assert statuses == [200, 200, 401, 200, 401, 401]
    text = out.getvalue()
    for what in ("callback accepted", "callback refused", "retry scheduled", "410"):
        assert what in text, f"the traffic did not log {what!r}: the test would prove nothing"
    leaked = {what: value for what, value in private_values(sent, sink).items() if value in text}
    assert leaked == {}


def test_log_level_filters_structlog_lines(capture: Callable[[Settings], io.StringIO]) -> None:
    """RELAY_LOG_LEVEL=warning drops info lines and keeps warnings."""
    out = capture(Settings(log_format="json", log_level="warning"))
    log: Any = structlog.get_logger("relay.test")
    log.info("an info line")
    log.warning("a warning line")
    events = [orjson.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["a warning line"]


def test_json_lines_carry_the_exception_and_the_level_names(
    capture: Callable[[Settings], io.StringIO],
) -> None:
    """An error logged with its exception has the traceback as text under "exception"; structlog's
    method names read as the usual level names; every line has its time."""
    out = capture(Settings(log_format="json", log_level="info"))
    log: Any = structlog.get_logger("relay.test")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        log.error("it failed", exc_info=exc)
    log.warn("careful")
    failed, careful = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert failed["level"] == "error" and "exc_info" not in failed
    assert "Traceback" in failed["exception"] and "ValueError: boom" in failed["exception"]
    assert careful["level"] == "warning"
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["timestamp"]) for r in (failed, careful)
    )


async def test_every_delivery_attempt_is_one_line_correlated_with_its_callback(
    capture: Callable[[Settings], io.StringIO], make_settings: Callable[..., Settings], redis: RedisClient
) -> None:
    """Each request a subscriber received has a log line with its webhook-id as `delivery_id`,
    and that id carries the `callback` id of the callback line the event came in with."""
    settings = private_settings(make_settings)
    out = capture(settings)
    sink = await Sink().start()
    try:
        async with running_relay(settings, redis, workers=1) as relay:
            await subscribe(relay, sink)
            body = marked_body()
            assert await relay.post_callback(body, signed(body)) == 200
            received = await sink.wait_for(3, "/hook") + await sink.wait_for(1, "/gone")  # 500, 500, 200
            wanted = Counter(got.delivery_id for got in received)
            deadline = time.monotonic() + 1  # the worker writes its line after the answer came
            while not attempt_lines(out) >= wanted and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
    finally:
        await sink.close()
    callback = next(r["callback"] for r in records(out) if r["event"] == "callback accepted")
    assert all(callback in delivery_id for delivery_id in wanted)
    assert attempt_lines(out) >= wanted


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def attempt_lines(out: io.StringIO) -> Counter[str]:
    """How many lines name each delivery_id."""
    return Counter(r["delivery_id"] for r in records(out) if "delivery_id" in r)


def test_a_line_logged_before_a_crash_is_not_lost() -> None:
    """A process that logs a line inside its event loop, then dies at once (``os._exit``: no
    atexit, no flush, no further turn of the loop): the line is on its stderr."""
    program = (
        "import asyncio, os, structlog\n"
        "from relay import logs\n"
        "from relay.settings import Settings\n"
        "logs.configure(Settings(log_format='json'))\n"
        "async def main():\n"
        "    structlog.get_logger('relay.test').warning('the last words')\n"
        "    logging_too = __import__('logging').getLogger('aiohttp.server')\n"
        "    logging_too.error('and the library too')\n"
        "    os._exit(3)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=30)
    assert result.returncode == 3
    events = [orjson.loads(line)["event"] for line in result.stderr.decode().splitlines()]
    assert events == ["the last words", "and the library too"]


async def test_relay_and_library_lines_leave_in_the_order_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through ``configure``, the relay's structlog lines and the standard library's records
    (aiohttp's, here) come out in the order they were logged, each as soon as it is logged."""
    out = io.StringIO()
    with saved_logging():
        monkeypatch.setattr(sys, "stderr", out)
        logs.configure(Settings(log_format="json", log_level="info"))
        relay_log: Any = structlog.get_logger("relay.test")
        relay_log.info("first, from the relay")
        assert out.getvalue().count("\n") == 1
        logging.getLogger("aiohttp.server").warning("second, from aiohttp")
        assert out.getvalue().count("\n") == 2
        relay_log.info("third, from the relay")
        logging.getLogger("redis.asyncio").error("fourth, from redis")
    events = [orjson.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == [
        "first, from the relay",
        "second, from aiohttp",
        "third, from the relay",
        "fourth, from redis",
    ]


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_timestamps_have_structlogs_iso_utc_format_and_the_current_time() -> None:
    """Every line's timestamp is what ``TimeStamper(fmt="iso", utc=True)`` writes
    (``2026-11-27T10:43:52.792283Z``), and it is the time the line was logged."""
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    before = datetime.now(UTC)
    ours = logs.TIMESTAMP(None, "info", {})["timestamp"]
    after = datetime.now(UTC)
    assert ISO_UTC.match(theirs), theirs  # the pattern describes structlog's own format
    assert ISO_UTC.match(ours), ours
    stamped = datetime.strptime(ours, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    slack = timedelta(milliseconds=1)  # rounding of the last digit; a second off is far outside
    assert before - slack <= stamped <= after + slack


def test_timestamps_follow_the_clock_from_one_second_to_the_next() -> None:
    """The date and time, formatted once per second, change with the second: instants in the
    same second, the next second, a minute on and back again each get their own exact time."""
    instants = [1_700_000_000.5, 1_700_000_000.75, 1_700_000_001.25, 1_700_000_061.125, 1_700_000_000.0625]
    clock = iter(instants)
    stamp = logs.Timestamp(Clock(now=lambda: next(clock)))
    got = [stamp(None, "info", {})["timestamp"] for _ in instants]
    assert got == [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in instants]
