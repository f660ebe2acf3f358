"""relay.tracing: off unless an OTLP endpoint is set; spans of one callback in one trace."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from relay.delivery import DELIVERY
from relay.settings import Settings
from relay.tracing import Tracing, end, traceparent
from tests.api_client import create
from tests.callbacks import callback_body, signed
from tests.delivery_harness import FAST
from tests.sink import Sink

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-9a-f]")


def _recording() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def test_off_without_an_endpoint() -> None:
    """No OTEL_EXPORTER_OTLP_ENDPOINT: tracing is off and has no provider."""
    tracing = Tracing.from_environment({"OTEL_SERVICE_NAME": "x"})
    assert not tracing.on and tracing.provider is None


def test_on_with_an_endpoint_named_after_the_service() -> None:
    """With an endpoint, spans are made, under OTEL_SERVICE_NAME (default ``relay``)."""
    for environ, name in (
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "relay"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "edge"}, "edge"),
    ):
        tracing = Tracing.from_environment(environ)
        assert tracing.on and tracing.provider is not None
        assert tracing.provider.resource.attributes["service.name"] == name
        tracing.shutdown()


def test_a_delivery_joins_the_trace_its_entry_carried() -> None:
    """The delivery span is a child of the ingest span, found through the entry's traceparent."""
    tracing, exporter = _recording()
    ingest = tracing.ingest()
    carried = traceparent(ingest)
    end(ingest)
    delivery = tracing.delivery(carried, {"relay.webhook.id": 7})
    sent = traceparent(delivery)
    end(delivery, http__response__status_code=200)
    root, child = exporter.get_finished_spans()
    assert root.kind == SpanKind.SERVER and root.parent is None
    assert child.kind == SpanKind.CLIENT and child.parent is not None
    assert child.parent.span_id == root.context.span_id
    assert child.attributes == {"relay.webhook.id": 7, "http.response.status_code": 200}
    match = TRACEPARENT.fullmatch(sent)
    assert match is not None
    assert int(match.group(1), 16) == root.context.trace_id
    assert int(match.group(2), 16) == child.context.span_id


def test_a_delivery_without_a_carried_context_starts_a_trace() -> None:
    """An entry written while tracing was off gives its delivery a trace of its own."""
    tracing, exporter = _recording()
    end(tracing.delivery("", {}))
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_steps_are_children_and_errors_are_marked() -> None:
    """``verify`` and ``write`` sit under the ingest span; an error sets the span's status."""
    tracing, exporter = _recording()
    ingest = tracing.ingest()
    end(tracing.step(ingest, "verify"), error="bad signature")
    end(ingest)
    verify, root = exporter.get_finished_spans()
    assert verify.parent is not None and verify.parent.span_id == root.context.span_id
    assert verify.status.status_code == StatusCode.ERROR


def test_each_callback_starts_a_new_trace() -> None:
    """Two ingest spans: two traces."""
    tracing, exporter = _recording()
    end(tracing.ingest())
    end(tracing.ingest())
    first, second = exporter.get_finished_spans()
    assert first.context.trace_id != second.context.trace_id


async def test_one_callback_to_two_webhooks_is_one_trace(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """One callback matching two webhooks: one trace holding the ingest span (with its verify
    and write steps) and one delivery span per webhook under it; each subscriber got a
    ``traceparent`` naming its own delivery span in that trace."""
    tracing, exporter = _recording()
    sink = await Sink().start()
    try:
        client = await make_client(make_settings(**FAST), workers=1, tracing=tracing)
        for path in ("/a", "/b"):
            await create(client, callback=sink.url(path))
        await client.app[DELIVERY].view.refresh()
        body = callback_body()
        assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
        got = [*(await sink.wait_for(1, "/a")), *(await sink.wait_for(1, "/b"))]
        deadline = time.monotonic() + 5
        while len([s for s in exporter.get_finished_spans() if s.name == "relay delivery"]) < 2:
            assert time.monotonic() < deadline, "the delivery spans did not end"
            await asyncio.sleep(0.01)
    finally:
        await sink.close()
    spans = exporter.get_finished_spans()
    (ingest,) = [s for s in spans if s.name == "relay ingest"]
    deliveries = [s for s in spans if s.name == "relay delivery"]
    assert {s.context.trace_id for s in spans} == {ingest.context.trace_id}
    assert sorted(s.name for s in spans if s.parent and s.parent.span_id == ingest.context.span_id) == [
        "relay delivery", "relay delivery", "verify", "write",
    ]  # fmt: skip
    assert ingest.attributes is not None and ingest.attributes["relay.outcome"] == "accepted"
    sent = {TRACEPARENT.fullmatch(r.headers["traceparent"]).groups() for r in got}  # type: ignore[union-attr]
    trace_id = format(ingest.context.trace_id, "032x")
    assert sent == {(trace_id, format(s.context.span_id, "016x")) for s in deliveries}


async def test_untraced_deliveries_send_no_traceparent(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """Tracing off (the default): the entry carries no context and the subscriber no header."""
    sink = await Sink().start()
    try:
        client = await make_client(make_settings(**FAST), workers=1)
        await create(client, callback=sink.url("/a"))
        await client.app[DELIVERY].view.refresh()
        body = callback_body()
        assert (await client.post("/callbacks/callfire", data=body, headers=signed(body))).status == 200
        (got,) = await sink.wait_for(1, "/a")
    finally:
        await sink.close()
    assert "traceparent" not in got.headers
