"""Parsing a CallFire callback body into events, keeping each event's JSON text byte for byte.

Pure. The body is walked once with the standard library's JSON scanner: the top-level object's
values are decoded as usual, and the ``events`` array is walked element by element so that each
event's exact source text (big ids, spacing and key order untouched) is kept beside its value.
"""

from __future__ import annotations

import hashlib
import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, NamedTuple

import orjson


class CallbackError(ValueError):
    """The body is signed but is not a CallFire callback. ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ParsedEvent(NamedTuple):
    """One event of a callback. (This and ``Callback`` are named tuples, not frozen dataclasses:
    built for every callback, they cost a third as much to make.)"""

    resource_type: str
    event_type: str
    timestamp: int | None
    text: bytes
    """The event's JSON exactly as received."""


class Callback(NamedTuple):
    digest: bytes
    """SHA-256 of the raw body: the dedup key, and the root of every delivery id."""
    webhook_id: int | None
    webhook_name: str | None
    timestamp: int | None
    events: tuple[ParsedEvent, ...]


MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a callback may have. CallFire's are a few levels deep;
the bound keeps every later step (the ``fields`` trim, re-encoding) far from Python's recursion limit."""

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _check_depth(body: bytes) -> None:
    """CallbackError when arrays and objects nest deeper than MAX_DEPTH. A body with fewer
    brackets than that cannot, which keeps the common case to two byte counts."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return
    depth = 0
    bare = _STRINGS.sub("", body.decode("utf-8", "replace"))
    for match in _BRACKETS.finditer(bare):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise CallbackError("the body is nested too deeply")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)
_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    return match.end() if match else i


def _int_or_none(value: Any) -> int | None:
    """A 64-bit integer (CallFire's ids and timestamps are), else None: a larger one is not
    CallFire's, and could not be stored in an entry's packed metadata (``relay.events.pack_meta``)."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _unicode(text: str, what: str) -> str:
    """``text``, or CallbackError when it holds a lone surrogate (what a JSON ``\\ud800`` escape
    without its pair decodes to): not Unicode text, it can be neither stored nor sent on."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise CallbackError(f"{what} is not Unicode text (an unpaired surrogate)") from None
    return text


def _walk_array(text: str, i: int, limit: int) -> tuple[list[tuple[Any, str]], int]:
    """``text[i]`` is ``[``: each element's value and exact text, and the index after ``]``."""
    items: list[tuple[Any, str]] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return items, i + 1
    while True:
        value, end = _DECODER.raw_decode(text, i)
        items.append((value, text[i:end]))
        if len(items) > limit:
            raise CallbackError(f"a callback may carry at most {limit} events", status=413)
        i = _skip(text, end)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
        elif text.startswith("]", i):
            return items, i + 1
        else:
            raise CallbackError("events: expected ',' or ']'")


def _walk_object(text: str, limit: int) -> tuple[dict[str, Any], list[tuple[Any, str]] | None]:
    i = _skip(text, 0)
    if not text.startswith("{", i):
        raise CallbackError("the body is not a JSON object")
    top: dict[str, Any] = {}
    events: list[tuple[Any, str]] | None = None
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        i += 1
    else:
        while True:
            if not text.startswith('"', i):
                raise CallbackError("expected a property name")
            key, i = scanstring(text, i + 1)
            i = _skip(text, i)
            if not text.startswith(":", i):
                raise CallbackError("expected ':' after a property name")
            i = _skip(text, i + 1)
            if key == "events" and text.startswith("[", i):
                events, i = _walk_array(text, i, limit)
                top[key] = None
            else:
                top[key], i = _DECODER.raw_decode(text, i)
                if key == "events":
                    events = None
            i = _skip(text, i)
            if text.startswith(",", i):
                i = _skip(text, i + 1)
            elif text.startswith("}", i):
                i += 1
                break
            else:
                raise CallbackError("expected ',' or '}'")
    if _skip(text, i) != len(text):
        raise CallbackError("unexpected data after the JSON object")
    return top, events


def _depth(prefix: bytes) -> int:
    """How many arrays and objects are open at the end of ``prefix`` (valid JSON up to there)."""
    # Without escapes every other piece between quotes is inside a string; with them, the regex.
    outside = _STRINGS_B.sub(b"", prefix) if b"\\" in prefix else b"".join(prefix.split(b'"')[::2])
    return outside.count(b"{") + outside.count(b"[") - outside.count(b"}") - outside.count(b"]")


_STRINGS_B = re.compile(rb'"(?:[^"\\]|\\.)*"')
_EVENTS_KEY = re.compile(rb'"events"[ \t\n\r]*:[ \t\n\r]*\[')
_SPACE = b" \t\n\r"


def _last_key_walk(body: bytes, limit: int) -> tuple[dict[str, Any], list[tuple[Any, bytes]]] | None:
    """CallFire's layout, ``events`` the last key: the body is cut around that array, and orjson
    decodes the array alone and the rest with ``null`` in its place. Both decoding proves the
    whole body is JSON, and the cut is exact: the key is found outside any string (no backslash
    before it, so no escaped quote) at depth 1, and the array runs to the closing brace.
    None sends the body to the next walk."""
    closing = body.rstrip(_SPACE)
    if not closing.endswith(b"}"):
        return None
    closing = closing[:-1].rstrip(_SPACE)
    if not closing.endswith(b"]"):
        return None
    end = len(closing)
    for match in _EVENTS_KEY.finditer(body):
        prefix = body[: match.start()]
        if b"\\" in prefix or _depth(prefix) != 1:
            continue  # escapes before the key (the other walks decide), or a nested "events" key
        start = match.end() - 1
        try:
            values = orjson.loads(body[start:end])
            top = orjson.loads(body[:start] + b"null" + body[end:])
        except orjson.JSONDecodeError:
            continue  # the array does not run to the end: not the last key
        if not isinstance(top, dict) or top.get("events", False) is not None or not values:
            return None
        return top, _with_texts(values, body[start:end], limit)
    return None


def _with_texts(values: list[Any], array: bytes, limit: int) -> list[tuple[Any, bytes]]:
    """Each event's value beside its exact bytes, ``array`` being the events array's own."""
    if len(values) > limit:
        raise CallbackError(f"a callback may carry at most {limit} events", status=413)
    if len(values) == 1:
        return [(values[0], array[1:-1].strip(_SPACE))]
    items, _ = _walk_array(array.decode("utf-8"), 0, limit)
    return [(value, raw.encode()) for value, raw in items]


def _fast_walk(body: bytes, limit: int) -> tuple[dict[str, Any], list[tuple[Any, bytes]]] | None:
    """The common case, mostly in C: ``_last_key_walk``; else orjson validates and decodes the
    body, then the top-level ``events`` array's exact bytes are found and proven by decoding
    them alone to the same value. None sends the body to the full walk (which also words the
    errors)."""
    found = _last_key_walk(body, limit)
    if found is not None:
        return found
    try:
        top = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # not JSON, or an integer past 64 bits: the full walk decides
    values = top.get("events") if isinstance(top, dict) else None
    if not isinstance(values, list) or not values:
        return None
    whole = body.decode("utf-8")  # orjson accepted it: valid UTF-8
    for match in _EVENTS_KEY.finditer(body):
        if _depth(body[: match.start()]) != 1:
            continue  # an "events" key inside a nested object
        start = match.end() - 1
        offset = len(body[:start].decode("utf-8"))
        array = whole[offset : _DECODER.raw_decode(whole, offset)[1]].encode()
        if orjson.loads(array) != values:
            continue  # a repeated "events" key: a later one holds the value
        return top, _with_texts(values, array, limit)
    return None


def _event(index: int, value: Any, text: bytes, top_timestamp: int | None) -> ParsedEvent:
    if not isinstance(value, dict):
        raise CallbackError(f"events[{index}] is not an object")
    resource, kind = value.get("resourceType"), value.get("eventType")
    if not isinstance(resource, str) or not resource.strip():
        raise CallbackError(f"events[{index}].resourceType is missing")
    if not isinstance(kind, str) or not kind.strip():
        raise CallbackError(f"events[{index}].eventType is missing")
    _unicode(resource, f"events[{index}].resourceType")
    _unicode(kind, f"events[{index}].eventType")
    timestamp = _int_or_none(value.get("timestamp"))
    return ParsedEvent(resource, kind, timestamp if timestamp is not None else top_timestamp, text)


def parse_callback(body: bytes, max_events: int = 1000) -> Callback:
    """The events of a callback body, or ``CallbackError`` saying what is wrong with it."""
    _check_depth(body)
    try:
        fast = _fast_walk(body, max_events)
        events: list[tuple[Any, bytes]] | None
        if fast is not None:
            top, events = fast
        else:
            top, walked = _walk_object(body.decode("utf-8"), max_events)
            events = None if walked is None else [(value, raw.encode()) for value, raw in walked]
    except UnicodeDecodeError:
        raise CallbackError("the body is not UTF-8") from None
    except RecursionError:
        raise CallbackError("the body is nested too deeply") from None
    except (json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, CallbackError):
            raise
        raise CallbackError(f"the body is not valid JSON: {exc}") from None
    if events is None:
        raise CallbackError("events: a callback must carry an events array")
    if not events:
        raise CallbackError("events: the array is empty")
    timestamp = _int_or_none(top.get("timestamp"))
    parsed = tuple(_event(n, value, raw, timestamp) for n, (value, raw) in enumerate(events))
    webhook_id = _int_or_none(top.get("webhookId"))
    if webhook_id is None and isinstance(events[0][0], dict):
        webhook_id = _int_or_none(events[0][0].get("webhookId"))
    name = top.get("webhookName")
    return Callback(
        digest=hashlib.sha256(body).digest(),
        webhook_id=webhook_id,
        webhook_name=_unicode(name, "webhookName") if isinstance(name, str) else None,
        timestamp=timestamp,
        events=parsed,
    )
