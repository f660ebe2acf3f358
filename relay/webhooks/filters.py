"""A webhook's ``filter``: a predicate over an event's JSON, in the style of Convoy's body filters.
Pure: ``compile_filter`` checks a filter object and returns its predicate; the predicate is
evaluated on an event decoded by ``parse_event``.

Syntax. An object whose keys are dotted paths into the event (``resource.finalCallResult``,
``eventType``; a number picks an element of a list: ``resource.records.0.result``), each mapped
to a value (equality) or to an object of operators: ``$eq``, ``$neq``, ``$in``, ``$nin``, ``$gt``,
``$gte``, ``$lt``, ``$lte``, ``$prefix``, ``$exist``. Every key of an object must hold. ``$and``,
``$or`` (non-empty lists of such objects) and ``$not`` (one object) combine them.

Semantics. Values are JSON's, compared without coercion: ``"1"`` is not ``1``, ``true`` is not
``1``; numbers compare exactly (integers as integers, past 2^53 too). A missing path is false for
every operator but ``$exist``; so is a value of another JSON type than the operand (``$neq`` and
``$nin`` too: they mean "same type, another value"; ``$not`` is "missing or different").
``$gt``/``$gte``/``$lt``/``$lte`` take a number or a string (strings by code point); ``$prefix``
a string; ``$in``/``$nin`` a non-empty list; ``$exist`` a boolean.

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

MAX_NODES = 64
MAX_DEPTH = 8
INT_RANGE = (-(2**63), 2**64 - 1)
"""Integers a filter may hold: what 64-bit ids need, and what the webhook's storage can write."""
OPERATORS = ("$eq", "$neq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$prefix", "$exist")
COMBINATORS = ("$and", "$or", "$not")

Predicate = Callable[[Any], bool]
"""Takes an event as ``parse_event`` decodes it; True when the event passes the filter."""
Test = Callable[[Any], bool]
"""Takes the value at a path, or ``MISSING``."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What a path that leads nowhere yields (distinct from JSON null)."""

_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def kind(value: Any) -> str | None:
    """The JSON type of a decoded value (``True`` is a boolean, not a number); None if not JSON."""
    return _KINDS.get(type(value))


class FilterError(ValueError):
    """A filter that cannot be used; ``at`` is the dotted path of the part at fault."""

    def __init__(self, at: tuple[str | int, ...], reason: str) -> None:
        self.at = ".".join(str(part) for part in at)
        self.reason = reason
        super().__init__(f"filter{'.' if self.at else ''}{self.at}: {reason}")


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
        test = _all([_operator(op, operand, (*at, op)) for op, operand in value.items()])
    else:
        test = _operator("$eq", value, at)
    return lambda event: test(get(event))


def _operator(op: str, operand: Any, at: tuple[str | int, ...]) -> Test:
    if not op.startswith("$"):
        reason = "is not an operator: an object of operators holds only $-keys"
        raise FilterError(at, f"{reason} (compare with an object through $eq)")
    make = _OPERATORS.get(op)
    if make is None:
        raise FilterError(at, f"unknown operator; known: {', '.join(OPERATORS)}")
    return make(operand, at)


def same(a: Any, b: Any) -> bool:
    """JSON equality without coercion: ``1 == 1.0`` (both numbers), ``1 != true``, ``"1" != 1``."""
    ka = kind(a)
    if ka is None or ka != kind(b):
        return False
    if ka == "array":
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return a.keys() == b.keys() and all(same(item, b[name]) for name, item in a.items())
    return bool(a == b)


_COMPOSITE = ("array", "object")


def _eq(operand: Any, at: tuple[str | int, ...]) -> Test:
    wanted = kind(operand)
    if wanted in _COMPOSITE:
        return lambda found: same(found, operand)
    return lambda found: _KINDS.get(type(found)) == wanted and found == operand


def _neq(operand: Any, at: tuple[str | int, ...]) -> Test:
    wanted = kind(operand)
    return lambda found: kind(found) == wanted and not same(found, operand)


def _members(operand: Any, at: tuple[str | int, ...]) -> list[Any]:
    if not isinstance(operand, list) or not operand:
        raise FilterError(at, "must be a non-empty list")
    return operand


def _in(operand: Any, at: tuple[str | int, ...]) -> Test:
    members = _members(operand, at)
    scalars = {(kind(m), m) for m in members if kind(m) not in _COMPOSITE}  # 1 and 1.0 agree, 1 and true not
    composites = [m for m in members if kind(m) in _COMPOSITE]

    def test(found: Any) -> bool:
        wanted = _KINDS.get(type(found))
        if wanted in _COMPOSITE:
            return any(same(found, member) for member in composites)
        return wanted is not None and (wanted, found) in scalars

    return test


def _nin(operand: Any, at: tuple[str | int, ...]) -> Test:
    kinds = {kind(member) for member in _members(operand, at)}
    within = _in(operand, at)
    return lambda found: _KINDS.get(type(found)) in kinds and not within(found)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, tuple[str | int, ...]], Test]:
    def make(operand: Any, at: tuple[str | int, ...]) -> Test:
        wanted = kind(operand)
        if wanted not in ("number", "string"):
            raise FilterError(at, "must be a number or a string")
        return lambda found: kind(found) == wanted and compare(found, operand)

    return make


def _prefix(operand: Any, at: tuple[str | int, ...]) -> Test:
    if not isinstance(operand, str):
        raise FilterError(at, "must be a string")
    return lambda found: isinstance(found, str) and found.startswith(operand)


def _exist(operand: Any, at: tuple[str | int, ...]) -> Test:
    if not isinstance(operand, bool):
        raise FilterError(at, "must be true or false")
    return lambda found: (found is not MISSING) is operand


_OPERATORS: dict[str, Callable[[Any, tuple[str | int, ...]], Test]] = {
    "$eq": _eq,
    "$neq": _neq,
    "$in": _in,
    "$nin": _nin,
    "$gt": _ordered(lambda a, b: a > b),
    "$gte": _ordered(lambda a, b: a >= b),
    "$lt": _ordered(lambda a, b: a < b),
    "$lte": _ordered(lambda a, b: a <= b),
    "$prefix": _prefix,
    "$exist": _exist,
}
