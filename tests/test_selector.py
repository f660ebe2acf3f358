"""The ``fields`` selector: its grammar, how it trims, and exact numbers through a trim."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay import selector
from relay.selector import SelectorError

PARSED = [
    ("id", {"id": None}),
    ("id,name", {"id": None, "name": None}),
    (" id , name ", {"id": None, "name": None}),
    ("items(id,name)", {"items": {"id": None, "name": None}}),
    ("items (id, name)", {"items": {"id": None, "name": None}}),
    (
        "limit,offset,items(id,callback)",
        {"limit": None, "offset": None, "items": {"id": None, "callback": None}},
    ),
    ("items(name,agents(id))", {"items": {"name": None, "agents": {"id": None}}}),
    ("items(id),items(name)", {"items": {"id": None, "name": None}}),
    ("items(id),items", {"items": None}),
    ("a(b(c(d)))", {"a": {"b": {"c": {"d": None}}}}),
    ("a\t(\nb )", {"a": {"b": None}}),
    (
        "webhookId,events(eventType,resource(id,toNumber,state))",
        {
            "webhookId": None,
            "events": {"eventType": None, "resource": {"id": None, "toNumber": None, "state": None}},
        },
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse(text: str, expected: dict[str, Any]) -> None:
    """Each well-formed selector parses to its tree of names."""
    assert selector.parse(text) == expected


MALFORMED = [
    ("", "empty"),
    ("   ", "empty"),
    (",", "expected a name"),
    ("id,", "expected a name"),
    ("id,,name", "expected a name"),
    ("(id)", "expected a name"),
    ("items(", "expected a name"),
    ("items(id", "missing ')'"),
    ("items()", "expected a name"),
    ("items(id))", "unexpected ')'"),
    ("id name", "unexpected 'name'"),
    ("items(id)name", "unexpected 'name'"),
    ("a(b(c(d(e))))", "nest more than"),
    ("na-me", "unexpected '-me'"),
    ("caf\u00e9", "unexpected"),
    ("a\rb", "unexpected"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_selector_is_refused(text: str, message: str) -> None:
    """A malformed selector raises SelectorError saying what is wrong."""
    with pytest.raises(SelectorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        selector.parse(text)


PAGE = {
    "items": [
        {"id": 1, "name": "a", "callback": "http://x/1", "agents": [{"id": 7, "n": 1}]},
        {"id": 2, "name": "b", "callback": "http://x/2", "agents": []},
    ],
    "limit": 100,
    "offset": 0,
    "totalCount": 2,
}

APPLIED = [
    ("id,name", {"id": 1, "name": "a"}, {"id": 1, "name": "a", "x": 3}),
    ("items(id,name)", {"items": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}, PAGE),
    ("totalCount", {"totalCount": 2}, PAGE),
    (
        "items(name,agents(id))",
        {"items": [{"name": "a", "agents": [{"id": 7}]}, {"name": "b", "agents": []}]},
        PAGE,
    ),
    ("missing", {}, PAGE),
    ("items(missing)", {"items": [{}, {}]}, PAGE),
    ("limit(x)", {"limit": 100}, PAGE),
    ("a(b)", {"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}),
    ("id", [{"id": 1}, {"id": 2}], [{"id": 1, "n": 1}, {"id": 2}]),
]


@pytest.mark.parametrize(("text", "expected", "value"), APPLIED)
def test_apply(text: str, expected: Any, value: Any) -> None:
    """Unselected names are left out at every level; sub-selections apply to objects and lists."""
    assert selector.apply(selector.parse(text), value) == expected


def test_trim_keeps_numbers_exact() -> None:
    """Ids past 2^53, long ints and float literals come out of a trim byte for byte."""
    body = b'{"id":7420017300281076000,"big":123456789012345678901234567890,"f":1.10,"e":1e400,"x":0}'
    assert selector.trim("id,big,f,e", body) == (
        b'{"id":7420017300281076000,"big":123456789012345678901234567890,"f":1.10,"e":1e400}'
    )


def test_trim_keeps_unicode_and_escapes() -> None:
    """Strings are re-encoded as valid JSON, non-ASCII text kept as is."""
    body = b'{"m":"caf\\u00e9 \\"q\\" \\n","n":null,"t":true,"l":[1,"x"]}'
    assert selector.trim("m,n,t,l", body) == '{"m":"café \\"q\\" \\n","n":null,"t":true,"l":[1,"x"]}'.encode()


def test_dumps_exact_encodes_plain_python() -> None:
    """dumps_exact also encodes ordinary ints and floats (what a caller builds itself)."""
    assert selector.dumps_exact({"a": 2**70, "b": 1.5, "c": [None, False]}) == (
        b'{"a":1180591620717411303424,"b":1.5,"c":[null,false]}'
    )


def test_loads_exact_refuses_nan() -> None:
    """NaN and Infinity are not JSON, so they are not accepted."""
    with pytest.raises(ValueError, match="not JSON"):
        selector.loads_exact(b'{"a": NaN}')


@given(st.text(alphabet="ab_9(), \t\n-", max_size=24))
def test_pattern_accepts_exactly_the_valid_selectors(text: str) -> None:
    """PATTERN (what /openapi.json declares) matches a string exactly when parse() accepts it."""
    try:
        selector.parse(text)
        valid = True
    except SelectorError:
        valid = False
    assert bool(re.search(selector.PATTERN, text)) is valid
