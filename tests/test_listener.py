"""POST /callbacks/callfire: what is accepted, what is refused, and what lands on the stream."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from relay.events import StreamEvent, events_of
from relay.ingest.parsing import parse_callback
from relay.keys import Keys
from relay.settings import Settings
from relay.signing import CALLFIRE_HEADER, callfire_signature
from tests.callbacks import SECRET, call_event, callback_body, signed

URL = "/callbacks/callfire"


async def stream_entries(redis: Any, keys: Keys) -> list[dict[bytes, bytes]]:
    out = []
    for stream in keys.all_events():
        out.extend(fields for _, fields in await redis.xrange(stream))
    return out


async def written_keys(redis: Any, keys: Keys) -> list[bytes]:
    return [k async for k in redis.scan_iter(match=f"{keys.prefix}:*")]


async def test_signed_callback_lands_on_the_stream(client: Any, redis: Any, keys: Keys) -> None:
    """A correctly signed callback gets 200 and one stream entry carrying the event."""
    body = callback_body(call_event(call_id=7420017300281076000), webhook_id=77, name="cf")
    resp = await client.post(URL, data=body, headers=signed(body))
    assert resp.status == 200
    assert await resp.json() == {"status": "accepted", "events": 1}
    [fields] = await stream_entries(redis, keys)
    assert set(fields) == {b"m", b"json"}
    event = StreamEvent.from_fields(fields)
    assert (event.resource, event.event, event.event_key) == ("OutboundCall", "Finished", "finished")
    assert (event.cf_webhook_id, event.cf_webhook_name) == (77, "cf")
    assert event.received_at > 0
    assert event.timestamp is not None and event.timestamp > 0


async def test_event_json_is_stored_byte_for_byte(client: Any, redis: Any, keys: Keys) -> None:
    """The event's own JSON text is one field, exactly as sent: ids above 2**53 stay exact."""
    event = (
        b'{"timestamp": 1, "resourceType":"OutboundTextDeliveryReport","eventType":"Received",'
        b' "resource":{"id":7420017300281076000,"deliveryState":"DELIVERED"}}'
    )
    body = b'{"webhookId":5,"resourceType":"OutboundTextDeliveryReport","events":[ ' + event + b" ]}"
    resp = await client.post(URL, data=body, headers=signed(body))
    assert resp.status == 200
    [fields] = await stream_entries(redis, keys)
    assert fields[b"json"] == event


async def test_one_entry_per_event(client: Any, redis: Any, keys: Keys) -> None:
    """A callback carrying three events becomes three entries, in order."""
    events = [call_event("Finished", call_id=n) for n in (1, 2, 3)]
    body = callback_body(*events)
    resp = await client.post(URL, data=body, headers=signed(body))
    assert await resp.json() == {"status": "accepted", "events": 3}
    entries = [StreamEvent.from_fields(f) for f in await stream_entries(redis, keys)]
    assert [e.index for e in entries] == [0, 1, 2]
    assert len({e.callback for e in entries}) == 1


async def test_callfire_test_vector_passes_the_signature_check(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """CallFire's vector verifies (so the answer is about its shape: 400, not 401)."""
    client = await make_client(make_settings(callfire_secrets="mysecrets"))
    body = b'{"name":"test webhook", "callback":"sms:callfire"}'
    resp = await client.post(URL, data=body, headers={CALLFIRE_HEADER: "v14pF7d5C1+CHNIEWlg+sw9v0Xg="})
    assert resp.status == 400
    resp = await client.post(URL, data=body, headers={CALLFIRE_HEADER: "v14pF7d5C1+CHNIEWlg+sw9v0Xh="})
    assert resp.status == 401


async def test_rotation_accepts_every_configured_secret(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """With two secrets configured, callbacks signed with either are accepted."""
    client = await make_client(make_settings(callfire_secrets="old-secret, new-secret"))
    for secret in ("old-secret", "new-secret"):
        body = callback_body()
        resp = await client.post(URL, data=body, headers=signed(body, secret))
        assert resp.status == 200, secret
    body = callback_body()
    assert (await client.post(URL, data=body, headers=signed(body, "third"))).status == 401


@pytest.mark.parametrize(
    ("webhook_id", "secret", "status"),
    [
        (11, "bound-11", 200),  # the bound secret for its own id
        (11, "shared", 401),  # a bound id accepts only its bound secrets
        (12, "shared", 200),  # an unbound id uses the shared secrets
        (12, "bound-11", 401),  # a bound secret does not sign for other ids
    ],
)
async def test_id_bound_secrets(
    make_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    webhook_id: int,
    secret: str,
    status: int,
) -> None:
    """`ID:SECRET` binds a secret to CallFire webhook ID; bare secrets serve the other ids."""
    client = await make_client(make_settings(callfire_secrets="11:bound-11,shared"))
    body = callback_body(webhook_id=webhook_id)
    resp = await client.post(URL, data=body, headers=signed(body, secret))
    assert resp.status == status


BAD_INPUTS: list[tuple[str, Callable[[bytes], tuple[str, bytes, dict[str, str]]], int]] = [
    ("no signature", lambda b: ("POST", b, {}), 401),
    ("wrong signature", lambda b: ("POST", b, signed(b, "not-the-secret")), 401),
    ("signature of another body", lambda b: ("POST", b + b" ", signed(b)), 401),
    ("not JSON", lambda _: ("POST", b"hello", signed(b"hello")), 400),
    ("no events", lambda _: ("POST", b'{"webhookId":1}', signed(b'{"webhookId":1}')), 400),
    (
        "event without eventType",
        lambda _: (
            "POST",
            b'{"events":[{"resourceType":"X"}]}',
            signed(b'{"events":[{"resourceType":"X"}]}'),
        ),
        400,
    ),
    ("too large", lambda _: ("POST", b"x" * 5000, signed(b"x" * 5000)), 413),
    (
        "gzip encoded",
        lambda b: ("POST", gzip.compress(b), {**signed(b), "Content-Encoding": "gzip"}),
        415,
    ),
    ("GET", lambda _: ("GET", b"", {}), 405),
    ("PUT", lambda b: ("PUT", b, signed(b)), 405),
]


@pytest.mark.parametrize(("case", "make", "status"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_is_refused_and_writes_nothing(
    make_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    redis: Any,
    case: str,
    make: Callable[[bytes], tuple[str, bytes, dict[str, str]]],
    status: int,
) -> None:
    """Each bad request gets its precise status, CallFire's JSON error body, and no Redis write."""
    settings = make_settings(max_body_bytes=4096)
    client = await make_client(settings)
    method, data, headers = make(callback_body())
    resp = await client.request(method, URL, data=data, headers=headers)
    assert resp.status == status
    error = await resp.json()
    assert error["httpStatusCode"] == status
    assert error["internalCode"].isdigit()
    assert error["message"]
    assert await written_keys(redis, Keys(settings.key_prefix, settings.partitions)) == []


async def test_repeat_inside_the_window_is_not_enqueued_again(client: Any, redis: Any, keys: Keys) -> None:
    """The same body twice: both answered 2xx, the events enqueued once."""
    body = callback_body()
    first = await client.post(URL, data=body, headers=signed(body))
    second = await client.post(URL, data=body, headers=signed(body))
    assert (first.status, second.status) == (200, 200)
    assert (await second.json())["status"] == "duplicate"
    assert len(await stream_entries(redis, keys)) == 1


async def test_repeat_after_the_window_is_enqueued_again(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings], redis: Any
) -> None:
    """Once the dedup window has passed, the same body is new again."""
    settings = make_settings(dedup_window="200ms")
    keys = Keys(settings.key_prefix, settings.partitions)
    client = await make_client(settings)
    body = callback_body()
    assert (await (await client.post(URL, data=body, headers=signed(body))).json())["status"] == "accepted"
    await asyncio.sleep(0.3)
    assert (await (await client.post(URL, data=body, headers=signed(body))).json())["status"] == "accepted"
    assert len(await stream_entries(redis, keys)) == 2


async def test_failed_enqueue_leaves_no_claim(client: Any, redis: Any, keys: Keys) -> None:
    """When the append fails, nothing is claimed, so CallFire's retry is accepted, not a replay."""
    body = callback_body()
    digest = hashlib.sha256(body).digest()
    stream = keys.events(keys.partition_of(digest))
    await redis.set(stream, "not a stream")  # XADD will fail with WRONGTYPE
    resp = await client.post(URL, data=body, headers=signed(body))
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    assert await redis.exists(keys.dedup(keys.partition_of(digest), digest.hex())) == 0
    await redis.delete(stream)
    resp = await client.post(URL, data=body, headers=signed(body))
    assert (await resp.json())["status"] == "accepted"


async def test_unsigned_callbacks_only_when_allowed(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """RELAY_ALLOW_UNSIGNED accepts a callback with no signature header, and only then."""
    body = callback_body()
    strict = await make_client(make_settings())
    assert (await strict.post(URL, data=body)).status == 401
    lax = await make_client(make_settings(allow_unsigned=True, callfire_secrets=""))
    assert (await lax.post(URL, data=body)).status == 200


async def test_stale_callbacks_refused_when_a_max_age_is_set(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """With RELAY_MAX_CALLBACK_AGE, a callback whose timestamp is older is refused (replay guard)."""
    client = await make_client(make_settings(max_callback_age="1m"))
    old = b'{"timestamp":1000,"events":[{"resourceType":"OutboundCall","eventType":"Finished"}]}'
    resp = await client.post(URL, data=old, headers=signed(old))
    assert resp.status == 400
    assert "timestamp" in (await resp.json())["message"]


async def test_signature_is_checked_before_parsing(client: Any) -> None:
    """An unsigned body that is not even JSON is a 401, not a 400: nothing is parsed unverified."""
    resp = await client.post(URL, data=b"{{{", headers={CALLFIRE_HEADER: callfire_signature(b"x", b"{{{")})
    assert resp.status == 401


async def test_secret_and_signature_never_in_error_bodies(client: Any) -> None:
    """Error bodies say what is wrong without echoing the secret, the signature or the body."""
    body = callback_body()
    headers = signed(body, "wrong-secret")
    text = await (await client.post(URL, data=body, headers=headers)).text()
    for secret_thing in (SECRET, "wrong-secret", headers[CALLFIRE_HEADER], "12135551100"):
        assert secret_thing not in text


@pytest.mark.parametrize("name", ["n", 'a "quoted", \\escaped\\ name\n\u2028 ☎ 𝄞', None])
async def test_entries_hold_exactly_the_stream_schema(
    client: Any, redis: Any, keys: Keys, name: str | None
) -> None:
    """What the ingest script writes is ``StreamEvent.to_fields()`` of the events the listener
    built (``events_of``), byte for byte, whatever the webhook's name."""
    events = [call_event("Finished", call_id=1), call_event("FINISHED", call_id=2)]
    events[1].pop("timestamp")
    body = callback_body(*events, webhook_id=9, name=name)
    assert (await client.post(URL, data=body, headers=signed(body))).status == 200
    raw = await stream_entries(redis, keys)
    stored = [StreamEvent.from_fields(f) for f in raw]
    expected = events_of(parse_callback(body), stored[0].received_at)
    assert stored == expected
    assert stored[0].cf_webhook_name == (name or "")
    assert raw == [{k.encode(): v for k, v in e.to_fields().items()} for e in expected]


async def test_the_callback_path_answers_as_before_for_everything_else(
    client: Any, redis: Any, keys: Keys
) -> None:
    """Another method gets 405 with an
    Allow header naming POST; the listener's own refusals (a bad signature: 401) and 405 carry
    CallFire's JSON error body; a callback sent with ``Expect: 100-continue`` is accepted."""
    not_allowed = await client.get(URL)
    assert not_allowed.status == 405
    assert "POST" in [m.strip() for m in not_allowed.headers["Allow"].split(",")]
    body = callback_body()
    refused = await client.post(URL, data=body, headers=signed(body, "not-the-secret"))
    assert refused.status == 401
    for response, status in ((not_allowed, 405), (refused, 401)):
        assert response.content_type == "application/json"
        error = await response.json()
        assert set(error) == {"httpStatusCode", "internalCode", "message", "developerMessage", "helpLink"}
        assert error["httpStatusCode"] == status and error["message"]
    async with asyncio.timeout(5):
        expecting = await client.post(URL, data=body, headers=signed(body), expect100=True)
    assert expecting.status == 200
    assert await expecting.json() == {"status": "accepted", "events": 1}
    assert len(await stream_entries(redis, keys)) == 1


def _batch_sample(name: str) -> float:
    return REGISTRY.get_sample_value(f"relay_ingest_batch_size_{name}") or 0.0


async def test_concurrent_callbacks_share_redis_round_trips(client: Any, redis: Any, keys: Keys) -> None:
    """Callbacks arriving together are written to Redis in shared round trips: each is answered
    200 and lands on the stream, yet the writes take fewer round trips than there are callbacks."""
    concurrent = 100
    count_before, sum_before = _batch_sample("count"), _batch_sample("sum")
    bodies = [callback_body() for _ in range(concurrent)]
    responses = await asyncio.gather(*(client.post(URL, data=b, headers=signed(b)) for b in bodies))
    assert [r.status for r in responses] == [200] * concurrent
    assert len(await stream_entries(redis, keys)) == concurrent
    assert _batch_sample("sum") - sum_before == concurrent  # every callback written, once
    round_trips = _batch_sample("count") - count_before
    assert 1 <= round_trips < concurrent


async def test_a_name_that_is_not_unicode_text_is_refused_and_writes_nothing(
    client: Any, redis: Any, keys: Keys
) -> None:
    """An unpaired surrogate (``\\ud800`` escaped alone) cannot be stored: a 400 saying so, and
    nothing written, while a callback sent beside it is written as usual."""
    bad = b'{"webhookName":"x\\ud800","events":[{"resourceType":"OutboundCall","eventType":"Finished"}]}'
    good = callback_body(call_event(call_id=3))
    answers = await asyncio.gather(
        client.post(URL, data=bad, headers=signed(bad)), client.post(URL, data=good, headers=signed(good))
    )
    assert [r.status for r in answers] == [400, 200]
    assert "webhookName is not Unicode text" in (await answers[0].json())["message"]
    assert len(await stream_entries(redis, keys)) == 1
