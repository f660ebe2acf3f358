"""Traces: one per callback, from its arrival (verify, write) to each delivery attempt.

OpenTelemetry, exported over OTLP (HTTP/protobuf) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set;
the SDK reads its own ``OTEL_*`` variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_TRACES_SAMPLER``, ...). Unset, tracing is off: ``Tracing.on`` is False and the ingest and
delivery paths test that one attribute per item and do nothing else.

- The ingest span (``relay ingest``, the trace's root) covers a callback from its arrival to its
  answer, with a ``verify`` and a ``write`` span under it.
- Its context goes on each of the callback's stream entries, a ``traceparent`` (W3C Trace
  Context) in the entry's packed metadata (``relay.events.pack_meta``), and travels with the
  event through retries, dead letters and replays.
- Each delivery attempt is a ``relay delivery`` span (a child of the ingest span), and the
  subscriber gets that span's context in a ``traceparent`` header.

A trace never starts from a ``traceparent`` a caller sends: each callback starts its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    """The process's tracer, or nothing: ``on`` says which."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.on = provider is not None
        self._tracer = provider.get_tracer("relay") if provider is not None else trace.NoOpTracer()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Tracing:
        """On, exporting over OTLP, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; else off."""
        if not environ.get(ENDPOINT_VARIABLE):
            return cls()
        # Imported only when used: the exporter pulls in protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        name = environ.get("OTEL_SERVICE_NAME") or "relay"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is buffered, then stop (at process exit)."""
        if self.provider is not None:
            self.provider.shutdown()

    # --- ingest ------------------------------------------------------------------------------
    def ingest(self) -> Span:
        """The root span of a callback's trace; the caller ends it."""
        return self._tracer.start_span("relay ingest", context=_ROOT, kind=SpanKind.SERVER)

    def step(self, parent: Span, name: str) -> Span:
        """A span under ``parent`` (``verify``, ``write``); the caller ends it."""
        return self._tracer.start_span(name, context=trace.set_span_in_context(parent))

    # --- delivery ----------------------------------------------------------------------------
    def delivery(self, traceparent: str, attributes: Mapping[str, Any]) -> Span:
        """A delivery attempt's span, under the context an entry carried (a new trace when it
        carried none, e.g. an entry written while tracing was off)."""
        parent = _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else _ROOT
        kind = SpanKind.CLIENT
        return self._tracer.start_span("relay delivery", context=parent, kind=kind, attributes=attributes)


_ROOT = trace.set_span_in_context(trace.INVALID_SPAN)
"""A context with no span in it: what a new trace starts from."""


def traceparent(span: Span) -> str:
    """The W3C ``traceparent`` of ``span``: what the stream entry and the subscriber get."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT, "")


def end(span: Span, *, error: str | None = None, **attributes: Any) -> None:
    """Set ``attributes`` (None values left out) and the status, then end ``span``."""
    span.set_attributes({k.replace("__", "."): v for k, v in attributes.items() if v is not None})
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()
