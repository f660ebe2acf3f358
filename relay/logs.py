"""Structured logs: JSON lines in production, readable lines in a terminal.

structlog renders the relay's own lines; the standard library's records (aiohttp, redis, asyncio)
go through the same renderer, so in JSON mode every line on stderr is one JSON object.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

from relay.settings import Settings

_TIMESTAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


def _dumps(obj: object, **_: object) -> str:
    """orjson is several times faster than the json module: one line per callback adds up."""
    return orjson.dumps(obj, default=str).decode()


class _RelayHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure`` installs on the root logger; replaced, not added, on a repeat."""


def configure(settings: Settings) -> None:
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    level = getattr(logging, settings.log_level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _TIMESTAMP,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configure_stdlib(renderer, max(level, logging.WARNING))


def _configure_stdlib(renderer: structlog.types.Processor, level: int) -> None:
    handler = _RelayHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, _TIMESTAMP],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _RelayHandler)] + [handler]
    root.setLevel(level)
