"""The filter's values and operators (``relay.webhooks.filters`` compiles a filter with them). Pure.

Values are JSON's as decoded (``kind`` names their type; ``True`` is a boolean, not a number), a
path that leads nowhere is ``MISSING``, and each operator, given its operand, makes a ``Test`` of
the value found at a path, or raises ``FilterError`` naming the operand at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPERATORS = ("$eq", "$neq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$prefix", "$exist")

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


def operator(op: str, operand: Any, at: tuple[str | int, ...]) -> Test:
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
