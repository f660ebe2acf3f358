"""A webhook's filter (relay/webhooks/filters.py): what holds for an event, and what is refused."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.webhooks.filter_ops import OPERATORS, FilterError, kind, same
from relay.webhooks.filters import MAX_DEPTH, MAX_NODES, compile_filter, parse_event

BIG = 7420017300281076000
"""A real delivery-report id, past 2^53: as a float it would be 7420017300281075712."""

EVENT = parse_event(
    b"""{"timestamp": 1700000000000, "webhookId": 1001, "resourceType": "OutboundCall",
    "eventType": "Finished",
    "resource": {"id": 7420017300281076001, "campaignId": 10, "finalCallResult": "LA",
      "inbound": false, "agentCall": null, "fromNumber": "12135551189", "labels": ["vip", "west"],
      "contact": {"id": 9, "name": "Ann"},
      "records": [{"id": 1, "billedAmount": 1.1667, "result": "LA", "duration": 35}]}}"""
)


def holds(spec: Any, event: Any = EVENT) -> bool:
    return compile_filter(spec)(event)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),
        ({"eventType": "Finished"}, True),
        ({"eventType": "finished"}, False),
        ({"resource.finalCallResult": {"$in": ["LA", "AM"]}}, True),
        ({"resource.finalCallResult": {"$in": ["AM", "BUSY"]}}, False),
        ({"resource.finalCallResult": {"$nin": ["AM", "BUSY"]}}, True),
        ({"resource.finalCallResult": {"$nin": ["LA"]}}, False),
        ({"resource.campaignId": 10}, True),
        ({"resource.campaignId": 10.0}, True),
        ({"resource.campaignId": {"$eq": 11}}, False),
        ({"resource.campaignId": {"$neq": 11}}, True),
        ({"resource.campaignId": {"$neq": 10}}, False),
        ({"resource.campaignId": {"$gt": 9, "$lte": 10}}, True),
        ({"resource.campaignId": {"$gt": 10}}, False),
        ({"resource.campaignId": {"$gte": 10, "$lt": 10.5}}, True),
        ({"resource.fromNumber": {"$prefix": "1213"}}, True),
        ({"resource.fromNumber": {"$prefix": "1415"}}, False),
        ({"resource.fromNumber": {"$gt": "1200"}}, True),
        ({"resource.inbound": False}, True),
        ({"resource.agentCall": None}, True),
        ({"resource.agentCall": {"$exist": True}}, True),
        ({"resource.missing": {"$exist": False}}, True),
        ({"resource.missing": {"$exist": True}}, False),
        ({"resource.labels": ["vip", "west"]}, True),
        ({"resource.labels": ["west", "vip"]}, False),
        ({"resource.labels.0": "vip"}, True),
        ({"resource.labels.5": {"$exist": True}}, False),
        ({"resource.contact": {"$eq": {"name": "Ann", "id": 9}}}, True),
        ({"resource.contact": {"$eq": {"name": "Ann"}}}, False),
        ({"resource.records.0.billedAmount": {"$gt": 1}}, True),
        ({"resource.records.0.result": "LA", "eventType": "Finished"}, True),
        ({"resource.records.0.result": "LA", "eventType": "Started"}, False),
        ({"$and": [{"eventType": "Finished"}, {"resource.campaignId": 10}]}, True),
        ({"$and": [{"eventType": "Finished"}, {"resource.campaignId": 11}]}, False),
        ({"$or": [{"eventType": "Started"}, {"resource.campaignId": 10}]}, True),
        ({"$or": [{"eventType": "Started"}, {"resource.campaignId": 11}]}, False),
        ({"$not": {"resource.finalCallResult": "AM"}}, True),
        ({"$not": {"resource.finalCallResult": "LA"}}, False),
        ({"$not": {"resource.missing": "x"}}, True),
    ],
)
def test_operators_table(spec: dict[str, Any], expected: bool) -> None:
    """Each operator and combinator on a realistic call event."""
    assert holds(spec) is expected


@pytest.mark.parametrize(
    "spec",
    [
        {"resource.campaignId": "10"},
        {"resource.campaignId": {"$in": ["10", True]}},
        {"resource.inbound": 0},
        {"resource.inbound": {"$in": [0]}},
        {"resource.campaignId": True},
        {"resource.finalCallResult": {"$neq": 1}},
        {"resource.finalCallResult": {"$nin": [1, 2]}},
        {"resource.campaignId": {"$gt": "1"}},
        {"resource.fromNumber": {"$gt": 1}},
        {"resource.agentCall": {"$neq": "x"}},
        {"resource.campaignId": {"$prefix": "1"}},
        {"resource.labels": "vip"},
        {"resource.contact.name.first": "Ann"},
        {"eventType.0": "F"},
    ],
)
def test_a_type_mismatch_is_false(spec: dict[str, Any]) -> None:
    """No coercion: "10" is not 10, false is not 0, true is not 1; a wrong type is false, $neq too."""
    assert holds(spec) is False


@pytest.mark.parametrize(
    "op", [{"$eq": "x"}, {"$neq": "x"}, {"$in": ["x"]}, {"$nin": ["x"]}, {"$gt": 1}, {"$prefix": "x"}]
)
def test_a_missing_path_is_false(op: dict[str, Any]) -> None:
    """Every operator but $exist is false on a path that leads nowhere."""
    assert holds({"resource.nothing": op}) is False
    assert holds({"resource.nothing.deeper": op}) is False


@pytest.mark.parametrize(
    ("spec", "event_id", "expected"),
    [
        ({"resource.id": BIG}, BIG, True),
        ({"resource.id": BIG}, BIG + 1, False),
        ({"resource.id": {"$in": [BIG + 1, BIG + 2]}}, BIG + 1, True),
        ({"resource.id": {"$gt": BIG}}, BIG + 1, True),
        ({"resource.id": {"$gt": BIG}}, BIG, False),
        ({"resource.id": float(BIG)}, BIG, False),
        ({"resource.id": 2**64 - 1}, 2**64 - 1, True),
        ({"resource.id": {"$lt": 2**64 - 1}}, 2**70, False),
    ],
)
def test_integers_compare_exactly_past_2_53(spec: dict[str, Any], event_id: int, expected: bool) -> None:
    """Ids past 2^53 (and past 64 bits in the event) compare as integers, never as floats."""
    event = parse_event(b'{"resource": {"id": %d}}' % event_id)
    assert holds(spec, event) is expected


def test_parse_event_keeps_integers_past_64_bits() -> None:
    """The event is decoded with exact integers of any size, and refuses NaN."""
    assert parse_event(b"[18446744073709551616123]") == [18446744073709551616123]
    with pytest.raises(ValueError, match="NaN"):
        parse_event(b"[NaN]")


def test_same_is_json_equality() -> None:
    """true and 1 differ, 1 and 1.0 agree, lists and objects compare deeply without coercion."""
    assert same(1, 1.0) and same({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not same(True, 1) and not same(0, False) and not same("1", 1) and not same(None, 0)
    assert not same([True], [1]) and not same({"a": 1}, {"a": 1, "b": 2})


def deep(levels: int) -> dict[str, Any]:
    """A filter exactly ``levels`` deep: $not objects nested."""
    spec: dict[str, Any] = {"eventType": "Finished"}
    for _ in range(levels - 1):
        spec = {"$not": spec}
    return spec


def wide(nodes: int) -> dict[str, Any]:
    """A filter of exactly ``nodes`` nodes: the object and nodes - 1 values."""
    return {f"resource.k{n}": n for n in range(nodes - 1)}


@pytest.mark.parametrize(
    ("spec", "at", "reason"),
    [
        ([], "", "must be a JSON object"),
        ("eventType", "", "must be a JSON object"),
        ({"$foo": 1}, "$foo", "unknown operator"),
        ({"$in": ["LA"]}, "$in", "an operator goes inside a path's object"),
        ({"a": {"$foo": 1}}, "a.$foo", "unknown operator; known: $eq"),
        ({"a": {"$in": "LA"}}, "a.$in", "must be a non-empty list"),
        ({"a": {"$in": []}}, "a.$in", "must be a non-empty list"),
        ({"a": {"$nin": {}}}, "a.$nin", "must be a non-empty list"),
        ({"a": {"$gt": True}}, "a.$gt", "must be a number or a string"),
        ({"a": {"$lte": None}}, "a.$lte", "must be a number or a string"),
        ({"a": {"$prefix": 1}}, "a.$prefix", "must be a string"),
        ({"a": {"$exist": 1}}, "a.$exist", "must be true or false"),
        ({"a": {}}, "a", "needs at least one"),
        ({"a": {"b": 1}}, "a.b", "is not an operator"),
        ({"a": {"$eq": 1, "b": 1}}, "a.b", "is not an operator"),
        ({"a..b": 1}, "a..b", "names separated by single dots"),
        ({"": 1}, "", "names separated by single dots"),
        ({".a": 1}, ".a", "names separated by single dots"),
        ({"$and": {"a": 1}}, "$and", "must be a non-empty list of filter objects"),
        ({"$or": []}, "$or", "must be a non-empty list of filter objects"),
        ({"$and": [{"a": 1}, "b"]}, "$and.1", "must be a filter object"),
        ({"$or": [{"a": {"$in": 3}}]}, "$or.0.a.$in", "must be a non-empty list"),
        ({"$not": [{"a": 1}]}, "$not", "must be a filter object"),
        ({"a": 2**64}, "a", "integers must fit in 64 bits"),
        ({"a": {"$in": [-(2**63) - 1]}}, "a.$in.0", "integers must fit in 64 bits"),
        ({"a": math.inf}, "a", "must be finite"),
        ({"a": {"$eq": math.nan}}, "a.$eq", "must be finite"),
        ({"a": (1, 2)}, "a", "tuple is not a JSON value"),
        (deep(MAX_DEPTH + 1), ".".join(["$not"] * MAX_DEPTH), f"nests deeper than {MAX_DEPTH}"),
        ({"a": {"$eq": [[[[[[[1]]]]]]]}}, "a.$eq.0.0.0.0.0.0", "nests deeper"),
        (wide(MAX_NODES + 1), "", f"has more than {MAX_NODES} nodes"),
    ],
)
def test_refused_filters_name_the_part_at_fault(spec: Any, at: str, reason: str) -> None:
    """Anything outside the grammar or the limits is a FilterError whose path names the fault."""
    with pytest.raises(FilterError) as caught:
        compile_filter(spec)
    assert caught.value.at == at
    assert reason in caught.value.reason
    assert str(caught.value) == f"filter{'.' if at else ''}{at}: {caught.value.reason}"


def test_the_limits_themselves_are_allowed() -> None:
    """Exactly MAX_NODES nodes and exactly MAX_DEPTH levels compile."""
    assert holds(wide(MAX_NODES), parse_event(b"{}")) is False
    assert holds(deep(MAX_DEPTH)) is (MAX_DEPTH % 2 == 1)


def test_an_event_that_is_not_an_object_has_no_paths() -> None:
    """A filter on an event that is a list, a string or null is false (only $exist false holds)."""
    for event in ([1], "x", None, 5):
        assert holds({"eventType": "Finished"}, event) is False
        assert holds({"eventType": {"$exist": False}}, event) is True


# --- properties (hypothesis) -------------------------------------------------------------------

FEW = settings(max_examples=300, deadline=None)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
scalars = (
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["a", "a.b", "a.0", "b", "$and", "$or", "$not", "$in", "", "a..b"])
operators = st.sampled_from([*OPERATORS, "$bad", "b"])
filter_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(operators, inner, min_size=1, max_size=3)
    ),
    max_leaves=20,
)
paths = st.sampled_from(["a", "b", "a.b", "a.0", "b.a"])
orderable = INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
conditions = (
    scalars
    | st.fixed_dictionaries({"$in": st.lists(scalars, min_size=1, max_size=3)})
    | st.fixed_dictionaries({"$nin": st.lists(scalars, min_size=1, max_size=3)})
    | st.fixed_dictionaries({"$neq": scalars})
    | st.fixed_dictionaries({"$gt": orderable, "$lte": orderable})
    | st.fixed_dictionaries({"$prefix": st.text(max_size=3)})
    | st.fixed_dictionaries({"$exist": st.booleans()})
)
valid_filters = st.recursive(
    st.dictionaries(paths, conditions, max_size=3),
    lambda inner: (
        st.fixed_dictionaries({"$and": st.lists(inner, min_size=1, max_size=3)})
        | st.fixed_dictionaries({"$or": st.lists(inner, min_size=1, max_size=3)})
        | st.fixed_dictionaries({"$not": inner})
    ),
    max_leaves=6,
)
events = st.dictionaries(st.sampled_from(["a", "b"]), json_values, max_size=3) | json_values


@FEW
@given(spec=filter_like, event=events)
def test_any_filter_compiles_or_is_refused_and_never_raises_on_any_event(spec: Any, event: Any) -> None:
    """Any input compiles or raises FilterError; a compiled filter answers a bool on any event."""
    try:
        predicate = compile_filter(spec)
    except FilterError:
        return
    assert predicate(event) in (True, False)
    assert predicate(parse_event(json.dumps(event).encode())) in (True, False)


@FEW
@given(spec=valid_filters, event=events)
def test_valid_filters_compile(spec: Any, event: Any) -> None:
    """Filters written by the grammar compile and answer a bool, unless past a limit."""
    try:
        predicate = compile_filter(spec)
    except FilterError as exc:
        assert "nests deeper" in exc.reason or "nodes" in exc.reason
        return
    assert predicate(event) in (True, False)


@FEW
@given(spec=filter_like | valid_filters, event=events)
def test_not_inverts(spec: Any, event: Any) -> None:
    """{"$not": f} holds exactly when f does not."""
    try:
        predicate, negated = compile_filter(spec), compile_filter({"$not": spec})
    except FilterError:
        return
    assert negated(event) is (not predicate(event))


@FEW
@given(wanted=st.lists(scalars, min_size=1, max_size=5), value=scalars)
def test_in_is_an_or_of_eq_and_nin_its_complement_within_the_type(wanted: list[Any], value: Any) -> None:
    """$in is $or of $eq; $nin holds when $in does not and the value shares a type with a member."""
    event = {"a": value}
    any_eq = compile_filter({"$or": [{"a": {"$eq": w}} for w in wanted]})(event)
    assert holds({"a": {"$in": wanted}}, event) is any_eq
    typed = any(kind(w) == kind(value) for w in wanted)
    assert holds({"a": {"$nin": wanted}}, event) is (typed and not any_eq)


@FEW
@given(a=INT64 | st.integers(min_value=0, max_value=2**64 - 1), b=st.integers())
def test_integers_compare_as_python_integers(a: int, b: int) -> None:
    """Equality and order on integers are exact, whatever their size in the event."""
    event = parse_event(json.dumps({"v": b}).encode())
    assert holds({"v": a}, event) is (a == b)
    assert holds({"v": {"$lt": a}}, event) is (b < a)
    assert holds({"v": {"$gte": a}}, event) is (b >= a)


@FEW
@given(a=scalars, b=scalars)
def test_no_coercion_between_json_types(a: Any, b: Any) -> None:
    """Values of two JSON types never compare equal (true is not 1, "1" is not 1)."""
    if kind(a) != kind(b):
        assert holds({"v": a}, {"v": b}) is False
        assert holds({"v": {"$neq": a}}, {"v": b}) is False


def identical(a: Any, b: Any) -> bool:
    """Equal with the same Python types throughout (1 is not 1.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    return bool(a == b)


wide_ints = st.integers(min_value=-(2**80), max_value=2**80)
exact_json = st.recursive(
    st.none() | st.booleans() | wide_ints | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@FEW
@given(value=exact_json)
def test_parse_event_decodes_as_the_standard_decoder(value: Any) -> None:
    """parse_event (orjson when exact) decodes what json.loads does, integers of any size exact;
    infinities (1e400) too."""
    text = json.dumps(value).replace("Infinity", "1e400").encode()
    assert identical(parse_event(text), json.loads(text))
