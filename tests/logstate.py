"""Logging configuration is process-wide: tests that configure it (directly or through the CLI)
put it back as it was, so the next test does not write to a closed capture stream."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog

from relay import logs
from relay.settings import Settings


@contextmanager
def saved_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


@contextmanager
def rendered_logs() -> Iterator[Callable[[], str]]:
    """structlog configured as a process configures it (JSON, debug), its lines kept in memory."""
    lines = io.StringIO()
    with saved_logging():
        logs.configure(Settings(log_format="json", log_level="debug"))
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(lines))
        yield lines.getvalue
