"""Fuzz targets: each takes raw bytes and may raise only the errors its code documents; anything
else escaping is a finding. Importable without atheris (the seeds are tested as plain inputs)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from relay import selector
from relay.ingest.parsing import CallbackError, parse_callback


def callback(data: bytes) -> None:
    """``relay.ingest.parsing.parse_callback``: a Callback or a CallbackError."""
    with contextlib.suppress(CallbackError):
        parse_callback(data, max_events=50)


def fields_selector(data: bytes) -> None:
    """``relay.selector``: the first line is a selector, the rest a JSON body to trim with it.
    A malformed selector or body is a ``ValueError`` (SelectorError, JSON and UTF-8 errors)."""
    text, _, body = data.partition(b"\n")
    try:
        parsed = selector.parse(text.decode("utf-8", "replace"))
        selector.trim(parsed, body)
    except ValueError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "callback": callback,
    "selector": fields_selector,
}

SEEDS: dict[str, list[bytes]] = {
    "callback": [
        b'{"name":"test webhook", "callback":"sms:callfire"}',
        b'{"timestamp":1,"webhookId":7,"webhookName":"w","resourceType":"OutboundCall","events":'
        b'[{"timestamp":2,"webhookId":7,"resourceType":"OutboundCall","eventType":"Finished",'
        b'"resource":{"id":7420017300281076000,"toNumber":"12135551100"}}]}',
        b'{"events":[{"resourceType":"A","eventType":"B"},{"resourceType":"C","eventType":"D"}]}',
    ],
    "selector": [
        b"id,name\n" + b'{"id":1,"name":"a","secret":"s"}',
        b"items(id,callback),totalCount\n" + b'{"items":[{"id":1,"callback":"x"}],"totalCount":1}',
        b"webhookId,events(eventType,resource(id,toNumber))\n" + b'{"webhookId":9007199254740993}',
    ],
}
