"""Fuzz targets: each takes raw bytes and may raise only the errors its code documents; anything
else escaping is a finding. Importable without atheris (the seeds are tested as plain inputs)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from relay import selector
from relay.api.http import describe
from relay.ingest.parsing import CallbackError, parse_callback
from relay.webhooks import filters
from relay.webhooks.model import WebhookBody, merged


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


def webhook_filter(data: bytes) -> None:
    """``relay.webhooks.filters``: the first line is a filter, the rest an event. A filter is
    compiled or refused (FilterError); a webhook body carrying it is a spec or a 400 naming
    ``filter``; an event is decoded or refused (ValueError); a compiled filter answers a bool."""
    text, _, event = data.partition(b"\n")
    try:
        spec: Any = json.loads(text)
    except (ValueError, RecursionError):
        return
    _through_the_api(text)
    try:
        predicate = filters.compile_filter(spec)
    except filters.FilterError:
        return
    try:
        document = filters.parse_event(event)
    except (ValueError, RecursionError):
        document = filters.MISSING
    if predicate(document) not in (True, False):
        raise AssertionError("a filter answered something other than a bool")


def _through_the_api(text: bytes) -> None:
    body = b'{"resource":"OutboundCall","events":["Finished"],"callback":"http://x.test/","filter":%s}'
    try:
        merged(None, WebhookBody.model_validate_json(body % text), 0)
    except ValidationError as exc:
        if not describe(exc, "body").startswith(("filter", "body")):
            raise AssertionError(describe(exc, "body")) from None


TARGETS: dict[str, Callable[[bytes], None]] = {
    "callback": callback,
    "selector": fields_selector,
    "filter": webhook_filter,
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
    "filter": [
        b'{"resource.finalCallResult":{"$in":["LA","AM"]}}\n'
        b'{"eventType":"Finished","resource":{"id":7420017300281076000,"finalCallResult":"LA"}}',
        b'{"$or":[{"resource.campaignId":7420017300281076001},{"$not":{"eventType":{"$prefix":"F"}}}]}\n'
        b'{"eventType":"Finished","resource":{"campaignId":7420017300281076001}}',
        b'{"resource.records.0.duration":{"$gte":30,"$lt":60.5},"resource.agentCall":{"$exist":false}}\n'
        b'{"resource":{"records":[{"duration":35}],"id":18446744073709551616123}}',
    ],
}
