"""HTTP Basic on /v2: missing, wrong and rotated credentials; none configured; open paths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from relay.settings import Settings
from tests.api_client import AUTH, basic
from tests.hostile import hang_up, read_response, request_head


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("admin", "wrong"),
        basic("other", "secret-pw"),
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + "YWRtaW4="},
    ],
)
async def test_bad_credentials_get_401_with_a_challenge(client: Any, headers: dict[str, str]) -> None:
    """Missing or wrong credentials get 401, CallFire's error body and WWW-Authenticate."""
    resp = await client.get("/v2/webhooks", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    assert (await resp.json())["httpStatusCode"] == 401


async def test_auth_covers_unknown_paths_under_v2(client: Any) -> None:
    """A path under /v2 that does not exist still asks for credentials first."""
    assert (await client.get("/v2/nothing-here")).status == 401
    assert (await client.get("/v2/nothing-here", headers=AUTH)).status == 404


async def test_rotated_credentials_both_work(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """With two pairs configured, each is accepted."""
    client = await make_client(make_settings(api_credentials="old:pw-1,new:pw-2"))
    for headers in (basic("old", "pw-1"), basic("new", "pw-2")):
        assert (await client.get("/v2/webhooks", headers=headers)).status == 200
    assert (await client.get("/v2/webhooks", headers=basic("old", "pw-2"))).status == 401


async def test_no_credentials_configured_is_403(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """Without RELAY_API_CREDENTIALS every API call is 403 naming the setting."""
    client = await make_client(make_settings(api_credentials=""))
    resp = await client.get("/v2/webhooks", headers=AUTH)
    assert resp.status == 403
    assert "RELAY_API_CREDENTIALS" in (await resp.json())["message"]


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json"])
async def test_open_paths_need_no_credentials(client: Any, path: str) -> None:
    """Health and the OpenAPI document are not behind HTTP Basic."""
    assert (await client.get(path)).status == 200


async def test_callbacks_are_not_behind_basic_auth(client: Any) -> None:
    """/callbacks/callfire answers on its own terms (its signature), not with a Basic challenge."""
    resp = await client.post("/callbacks/callfire", data=b"{}")
    assert "WWW-Authenticate" not in resp.headers


async def test_no_credentials_is_refused_before_the_body_is_read(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """A /v2 request without credentials is refused with 401 on its head alone: a body announced
    as 1000 bytes of which only a few ever arrive is not waited for (read_timeout is 30 s)."""
    client = await make_client(make_settings(read_timeout=30))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(request_head("/v2/webhooks", length=1000) + b'{"name": "nev')
        await writer.drain()
        async with asyncio.timeout(2):
            response = await read_response(reader)
    finally:
        await hang_up(writer)
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert orjson.loads(response.body)["httpStatusCode"] == 401


async def test_wrong_credentials_past_the_limit_get_429_right_ones_still_pass(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """Wrong credentials are limited per address as signatures are: past the limit a wrong pair
    gets 429 with Retry-After and CallFire's body; the right pair is still served."""
    client = await make_client(make_settings(auth_failure_limit=3, auth_failure_window=30))
    wrong = basic("admin", "wrong")
    statuses = [(await client.get("/v2/webhooks", headers=wrong)).status for _ in range(5)]
    limited = await client.get("/v2/webhooks", headers=wrong)
    right = await client.get("/v2/webhooks", headers=AUTH)
    assert statuses == [401, 401, 401, 429, 429]
    assert limited.status == 429 and 1 <= int(limited.headers["Retry-After"]) <= 30
    assert (await limited.json())["httpStatusCode"] == 429
    assert right.status == 200


async def test_no_authorization_header_is_not_a_failure(
    make_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    """A request without Authorization (a browser's first) is never counted: past the limit it
    still gets the 401 login prompt, not a 429."""
    client = await make_client(make_settings(auth_failure_limit=2))
    statuses = [(await client.get("/v2/webhooks")).status for _ in range(5)]
    for _ in range(2):
        await client.get("/v2/webhooks", headers=basic("admin", "wrong"))
    prompt = await client.get("/v2/webhooks")
    assert statuses == [401] * 5
    assert prompt.status == 401 and prompt.headers["WWW-Authenticate"].startswith("Basic ")
