"""The console's dead letters page over HTTP: listed newest first with their webhook, replayed and
deleted by its buttons, and every POST refused without the form's token or from another site.
Real Redis."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp.test_utils import TestClient

from relay.events import StreamEvent
from relay.keys import Keys
from relay.store.dead_letters import DeadLetters, letter_fields
from tests.api_client import AUTH, basic, create

Client = TestClient[Any, Any]


def _event(call_id: int = 42) -> StreamEvent:
    return StreamEvent(
        resource="OutboundCall", event="Finished", event_key="finished", cf_webhook_id=1001,
        cf_webhook_name="cf", timestamp=1, received_at=int(time.time() * 1000),
        callback="ab" * 32, index=0, json=b'{"eventType":"Finished","resource":{"id":%d}}' % call_id,
    )  # fmt: skip


async def _letter(redis: Any, keys: Keys, webhook_id: int, **fields: Any) -> str:
    values: dict[str, Any] = {
        "kind": "exhausted", "reason": "gave up after 3 attempts", "at": int(time.time() * 1000),
        "webhook_id": webhook_id, "attempts": 3, "last_status": 503, "event": _event(),
    }  # fmt: skip
    values.update(fields)
    return await DeadLetters(redis, keys).add(letter_fields(**values))


async def _form(client: TestClient[Any, Any], path: str = "/console/dead-letters") -> tuple[str, str]:
    """The page, and the token its forms carry."""
    resp = await client.get(path, headers=AUTH)
    assert resp.status == 200
    page = await resp.text()
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    return page, token.group(1)


def here(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


async def _post(client: TestClient[Any, Any], path: str, data: dict[str, str], **headers: str) -> Any:
    return await client.post(path, data=data, headers={**AUTH, **headers}, allow_redirects=False)


async def test_letters_are_listed_with_their_webhook(client: Client, redis: Any, keys: Keys) -> None:
    """Each letter shows its webhook's id and name, its kind, its last status and the event."""
    hook = await create(client, name="billing")
    letter = await _letter(redis, keys, hook)
    page, _ = await _form(client)
    row = page[page.index(f'id="letter-{letter}"') :].split("</tr>")[0]
    for shown in (f"{hook} billing", "exhausted", "HTTP 503", "OutboundCall Finished", "&#34;id&#34;:42"):
        assert shown in row, shown


async def test_letters_are_filtered_by_webhook(client: Client, redis: Any, keys: Keys) -> None:
    """``?webhookId=`` lists that webhook's letters only."""
    first, second = await create(client, name="a"), await create(client, name="b")
    mine, theirs = await _letter(redis, keys, first), await _letter(redis, keys, second)
    page, _ = await _form(client, f"/console/dead-letters?webhookId={first}")
    assert f"letter-{mine}" in page and f"letter-{theirs}" not in page


async def test_replay_button_requeues_the_letter(client: Client, redis: Any, keys: Keys) -> None:
    """A same-origin POST with the token: the delivery is queued again, the letter leaves, and the
    list says so."""
    hook = await create(client)
    letter = await _letter(redis, keys, hook)
    _, token = await _form(client)
    resp = await _post(client, f"/console/dead-letters/{letter}/replay", {"csrf": token}, Origin=here(client))
    assert resp.status == 303
    assert await DeadLetters(redis, keys).get(letter) is None
    queued = sum([await redis.xlen(keys.deliveries(p)) for p in range(keys.partitions)])
    assert queued == 1
    page = await (await client.get(resp.headers["Location"], headers=AUTH)).text()
    assert f"Dead letter {letter} replayed" in page


async def test_delete_button_removes_the_letter(client: Client, redis: Any, keys: Keys) -> None:
    """A same-origin POST with the token deletes the letter and queues nothing."""
    letter = await _letter(redis, keys, await create(client))
    _, token = await _form(client)
    resp = await _post(client, f"/console/dead-letters/{letter}/delete", {"csrf": token}, Origin=here(client))
    assert resp.status == 303
    assert await DeadLetters(redis, keys).get(letter) is None
    assert sum([await redis.xlen(keys.deliveries(p)) for p in range(keys.partitions)]) == 0


async def test_refused_posts_change_nothing(client: Client, redis: Any, keys: Keys) -> None:
    """No token, a forged token, another site's Origin, a cross-site fetch, or no Origin at all:
    403, and the letter stays."""
    letter = await _letter(redis, keys, await create(client))
    _, token = await _form(client)
    origin = here(client)
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {"Origin": origin}),
        ({"csrf": token[:-4] + "0000"}, {"Origin": origin}),
        ({"csrf": token}, {"Origin": "http://evil.example"}),
        ({"csrf": token}, {"Origin": origin, "Sec-Fetch-Site": "cross-site"}),
        ({"csrf": token}, {}),
    ]
    for data, headers in attempts:
        for action in ("replay", "delete"):
            resp = await _post(client, f"/console/dead-letters/{letter}/{action}", data, **headers)
            assert resp.status == 403, (data, headers)
            assert "refused" in (await resp.text()).lower()
    assert await DeadLetters(redis, keys).get(letter) is not None


async def test_a_token_is_bound_to_its_operator(
    make_client: Any, make_settings: Any, redis: Any, keys: Keys
) -> None:
    """A token from one operator's page does not pass for another operator."""
    other = await make_client(make_settings(api_credentials="admin:secret-pw,ops:ops-pw"))
    letter = await _letter(redis, keys, await create(other))
    _, token = await _form(other)
    resp = await other.post(
        f"/console/dead-letters/{letter}/delete", data={"csrf": token},
        headers={**basic("ops", "ops-pw"), "Origin": here(other)}, allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 403
    assert await DeadLetters(redis, keys).get(letter) is not None


async def test_posts_need_the_credentials(client: TestClient[Any, Any]) -> None:
    """Without HTTP Basic a POST is 401 before anything else."""
    resp = await client.post("/console/dead-letters/1-0/replay", data={}, allow_redirects=False)
    assert resp.status == 401
