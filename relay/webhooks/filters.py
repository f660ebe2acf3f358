"""A webhook's ``filter``: a predicate over an event's JSON, in the style of Convoy's body filters.
Pure: ``compile_filter`` checks a filter object and returns its predicate; the predicate is
evaluated on an event decoded by ``parse_event``.

Syntax. An object whose keys are dotted paths into the event (``resource.finalCallResult``,
``eventType``; a number picks an element of a list: ``resource.records.0.result``), each mapped
to a value (equality) or to an object of operators: ``$eq``, ``$neq``, ``$in``, ``$nin``, ``$gt``,
``$gte``, ``$lt``, ``$lte``, ``$prefix``, ``$exist``. Every key of an object must hold. ``$and``,
``$or`` (non-empty lists of such objects) and ``$not`` (one object) combine them.

Semantics (the operators are ``relay.webhooks.filter_ops``). Values are JSON's, compared without
coercion: ``"1"`` is not ``1``, ``true`` is not ``1``; numbers compare exactly (integers as
integers, past 2^53 too). A missing path is false for every operator but ``$exist``; so is a value
of another JSON type than the operand (``$neq`` and ``$nin`` too: they mean "same type, another
value"; ``$not`` is "missing or different"). ``$gt``/``$gte``/``$lt``/``$lte`` take a number or a
string (strings by code point); ``$prefix`` a string; ``$in``/``$nin`` a non-empty list; ``$exist``
a boolean.

Limits. At most ``MAX_NODES`` JSON values in the filter (every object, list, string, number,
boolean and null counts) and ``MAX_DEPTH`` levels of nested objects and lists (the filter itself
is level 1). Anything else raises ``FilterError`` naming the part at fault:
``filter.resource.finalCallResult.$in: must be a non-empty list``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import orjson

from relay.webhooks.filter_ops import MISSING as MISSING  # part of this module's interface too
from relay.webhooks.filter_ops import OPERATORS, kind, operator
from relay.webhooks.filter_ops import FilterError as FilterError  # what compile_filter raises

MAX_NODES = 64
MAX_DEPTH = 8
INT_RANGE = (-(2**63), 2**64 - 1)
"""Integers a filter may hold: what 64-bit ids need, and what the webhook's storage can write."""
COMBINATORS = ("$and", "$or", "$not")

Predicate = Callable[[Any], bool]
"""Takes an event as ``parse_event`` decodes it; True when the event passes the filter."""


_DIGITS = bytes.maketrans(b"012345678", b"999999999")
_LONG = (b"9" * 20, b"-" + b"9" * 19)
"""Digit runs that may be an integer outside orjson's exact range (-2^63 .. 2^64-1); such a run
may also sit in a string or a fraction, which only costs the slower decoder."""


def parse_event(data: bytes) -> Any:
    """An event's JSON, decoded for filtering, every integer exact. orjson (three times faster)
    when it is exact: it turns integers past 64 bits into floats, so JSON holding a digit run
    that long, or that orjson refuses, goes to the standard decoder, whose integers are exact
    at any size. Raises ValueError on anything that is not JSON (NaN and Infinity included)."""
    digits = data.translate(_DIGITS)  # a C loop: ~1 us per KiB, a regular expression takes 20
    if _LONG[0] not in digits and _LONG[1] not in digits:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, parse_constant=_not_json)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def compile_filter(spec: Any) -> Predicate:
    """The predicate of a filter object. Raises FilterError naming the part at fault."""
    _check_shape(spec)
    if not isinstance(spec, dict):
        raise FilterError((), "must be a JSON object")
    return _object(spec, ())


def compiled(spec: dict[str, Any]) -> Predicate:
    """``compile_filter``, once per distinct filter: cached by its canonical JSON (where ``true``
    and ``1`` differ, unlike as keys of a dict). Raises FilterError, or TypeError on what orjson
    cannot write."""
    return _compiled(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS))


@functools.lru_cache(maxsize=16_384)
def _compiled(canonical: bytes) -> Predicate:
    return compile_filter(parse_event(canonical))


def nothing(_: Any) -> bool:
    """The predicate of a stored filter that does not compile: nothing passes."""
    return False


def _check_shape(spec: Any) -> None:
    """JSON values only, within the node and depth limits; walked without recursion."""
    nodes = 0
    todo: list[tuple[Any, tuple[str | int, ...], int]] = [(spec, (), 1)]
    while todo:
        value, at, depth = todo.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise FilterError((), f"has more than {MAX_NODES} nodes (every object, list and value counts)")
        found = kind(value)
        if found is None:
            raise FilterError(at, f"{type(value).__name__} is not a JSON value")
        if depth > MAX_DEPTH and found in ("object", "array"):
            raise FilterError(at, f"nests deeper than {MAX_DEPTH} levels")
        if found == "number" and not _number_ok(value):
            reason = "integers must fit in 64 bits" if isinstance(value, int) else "must be finite"
            raise FilterError(at, reason)
        children: list[tuple[Any, tuple[str | int, ...], int]] = []
        if isinstance(value, dict):
            for name, item in value.items():
                if not isinstance(name, str):
                    raise FilterError(at, "object keys must be strings")
                children.append((item, (*at, name), depth + 1))
        elif isinstance(value, list):
            children = [(item, (*at, n), depth + 1) for n, item in enumerate(value)]
        todo.extend(reversed(children))  # the first fault in document order is the one named


def _number_ok(value: int | float) -> bool:
    if isinstance(value, int):
        return INT_RANGE[0] <= value <= INT_RANGE[1]
    return value - value == 0  # false for inf and nan


def _object(spec: dict[str, Any], at: tuple[str | int, ...]) -> Predicate:
    """Every key holds: paths, and the combinators."""
    parts: list[Predicate] = []
    for key, value in spec.items():
        here = (*at, key)
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise FilterError(here, "must be a non-empty list of filter objects")
            subs = [_nested(item, (*here, n)) for n, item in enumerate(value)]
            parts.append(_all(subs) if key == "$and" else _any(subs))
        elif key == "$not":
            parts.append(_negation(_nested(value, here)))
        elif key.startswith("$"):
            hint = "an operator goes inside a path's object" if key in OPERATORS else "unknown operator"
            raise FilterError(here, f"{hint}; here a key is a path or one of {', '.join(COMBINATORS)}")
        else:
            parts.append(_condition(_path(key, here), value, here))
    return _all(parts)


def _nested(value: Any, at: tuple[str | int, ...]) -> Predicate:
    if not isinstance(value, dict):
        raise FilterError(at, "must be a filter object")
    return _object(value, at)


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda event: first(event) and second(event)
    return lambda event: all(part(event) for part in parts)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda event: any(part(event) for part in parts)


def _negation(part: Predicate) -> Predicate:
    return lambda event: not part(event)


def _path(key: str, at: tuple[str | int, ...]) -> tuple[str, ...]:
    names = tuple(key.split("."))
    if not all(names):
        raise FilterError(at, "a path is names separated by single dots")
    return names


def _lookup(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """The value at a path, or MISSING. A name of digits also indexes a list."""

    def get(value: Any) -> Any:
        for name in names:
            if isinstance(value, dict):
                value = value.get(name, MISSING)
            elif isinstance(value, list) and name.isdigit() and name.isascii():
                index = int(name)
                value = value[index] if index < len(value) else MISSING
            else:
                return MISSING
        return value

    return get


def _condition(names: tuple[str, ...], value: Any, at: tuple[str | int, ...]) -> Predicate:
    get = _lookup(names)
    if isinstance(value, dict):
        if not value:
            raise FilterError(at, "an object of operators needs at least one")
        test = _all([operator(op, operand, (*at, op)) for op, operand in value.items()])
    else:
        test = operator("$eq", value, at)
    return lambda event: test(get(event))
