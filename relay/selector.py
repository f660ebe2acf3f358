"""CallFire's ``fields`` selector (partial response): parse it, apply it. Pure.

Grammar (callfire.md section 5)::

    selection := item ("," item)*
    item      := name ["(" selection ")"]
    name      := [A-Za-z0-9_]+

``id,name`` keeps two names; ``items(id,name)`` keeps ``items`` and, inside it, two names; a
sub-selection applies to an object or to every element of a list. Names not selected are left
out at every level. Spaces, tabs and newlines around names and punctuation are ignored; a name repeated
merges its sub-selections (``items(id),items(name)`` is ``items(id,name)``). Groups nest at most
``MAX_DEPTH`` deep; ``PATTERN`` is a regular expression accepting exactly the valid selectors
(what ``/openapi.json`` declares).

JSON is decoded and re-encoded here without ever turning a number into a float and back:
``loads_exact`` keeps every number's text, ``dumps_exact`` writes it unchanged, so ids past 2^53
(and odd literals such as ``1.10`` or ``1e400``) survive a trim byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Selector = Mapping[str, "Selector | None"]
"""Name -> its sub-selection, or None for the whole value under that name."""

MAX_DEPTH = 3
"""Most groups nested inside one another: ``a(b(c(d)))``."""
_SPACE = r"[ \t\n]*"
_NAME = "[A-Za-z0-9_]+"
_TOKEN = re.compile(rf"{_SPACE}(?:({_NAME})|([,()]))")


def _pattern(depth: int) -> str:
    item = _SPACE + _NAME + _SPACE
    if depth > 0:
        item += rf"(?:\({_pattern(depth - 1)}\){_SPACE})?"
    return f"{item}(?:,{item})*"


PATTERN = f"^{_pattern(MAX_DEPTH)}$"


class SelectorError(ValueError):
    """A malformed selector; the message says where."""


def parse(text: str) -> Selector:
    """``"items(id,name),totalCount"`` -> ``{"items": {"id": None, "name": None}, "totalCount": None}``."""
    tokens = _tokenize(text)
    if not tokens:
        raise SelectorError("the selector is empty")
    selection, pos = _selection(tokens, 0, text, 0)
    if pos != len(tokens):
        raise SelectorError(f"unexpected {tokens[pos]!r} in selector {text!r}")
    return selection


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            rest = text[pos:].lstrip(" \t\n")
            if rest:
                raise SelectorError(f"unexpected {rest[:20]!r} in selector {text!r}")
            break
        tokens.append(match.group(1) or match.group(2))
        pos = match.end()
    return tokens


def _selection(tokens: list[str], pos: int, text: str, depth: int) -> tuple[dict[str, Any], int]:
    if depth > MAX_DEPTH:
        raise SelectorError(f"groups nest more than {MAX_DEPTH} deep in selector {text!r}")
    selection: dict[str, Any] = {}
    while True:
        if pos >= len(tokens) or tokens[pos] in ",()":
            found = "the end" if pos >= len(tokens) else repr(tokens[pos])
            raise SelectorError(f"expected a name but found {found} in selector {text!r}")
        name, pos = tokens[pos], pos + 1
        sub: dict[str, Any] | None = None
        if pos < len(tokens) and tokens[pos] == "(":
            sub, pos = _selection(tokens, pos + 1, text, depth + 1)
            if pos >= len(tokens) or tokens[pos] != ")":
                raise SelectorError(f"missing ')' in selector {text!r}")
            pos += 1
        selection[name] = _merge(selection[name], sub) if name in selection else sub
        if pos >= len(tokens) or tokens[pos] != ",":
            return selection, pos
        pos += 1


def _merge(a: Selector | None, b: Selector | None) -> dict[str, Any] | None:
    if a is None or b is None:
        return None
    merged: dict[str, Any] = dict(a)
    for name, sub in b.items():
        merged[name] = _merge(merged[name], sub) if name in merged else sub
    return merged


def apply(selector: Selector, value: Any) -> Any:
    """Keep only the selected names of an object, or of every object in a list; scalars as is."""
    if isinstance(value, list):
        return [apply(selector, item) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in selector:
                sub = selector[name]
                out[name] = item if sub is None else apply(sub, item)
        return out
    return value


class RawNumber(str):
    """A JSON number kept as its original text."""

    __slots__ = ()


def loads_exact(data: bytes | str) -> Any:
    """Decode JSON; every number stays a ``RawNumber`` holding its exact text."""
    return json.loads(data, parse_int=RawNumber, parse_float=RawNumber, parse_constant=_refuse)


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def dumps_exact(value: Any) -> bytes:
    """Encode what ``loads_exact`` (or plain Python: ints, floats, str, ...) produced, compactly."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode()


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, RawNumber):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None or isinstance(value, bool | int | float):
        out.append(json.dumps(value, allow_nan=False))
    elif isinstance(value, dict):
        out.append("{")
        for i, (name, item) in enumerate(value.items()):
            out.append("," if i else "")
            out.append(json.dumps(str(name), ensure_ascii=False) + ":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def trim(selector: Selector | str, body: bytes) -> bytes:
    """A JSON document with only the selected names, every number exactly as it was."""
    chosen = parse(selector) if isinstance(selector, str) else selector
    return dumps_exact(apply(chosen, loads_exact(body)))
