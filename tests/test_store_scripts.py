"""The Lua scripts, run by SHA; one that Redis forgot is loaded again and re-sent, alone."""

from __future__ import annotations

import pytest
from redis.exceptions import NoScriptError, ResponseError

from relay.store.connect import RedisClient
from relay.store.scripts import ACQUIRE, COMPLETE, INGEST, SETTLE, TAKE, WRITE, Script, ScriptPipeline, run

ECHO = Script("return {KEYS[1], ARGV[1]}")
FAIL = Script("return redis.error_reply('ERR no good')")


async def test_a_forgotten_script_is_loaded_again(redis: RedisClient, prefix: str) -> None:
    """After SCRIPT FLUSH (a Redis restarted empty), a call still gets its script's reply."""
    await redis.script_flush()
    assert await run(redis, ECHO, [f"{prefix}:k"], ["v"]) == [f"{prefix}:k".encode(), b"v"]
    assert await redis.script_exists(ECHO.sha) == [True]


async def test_in_a_pipeline_only_the_forgotten_calls_are_sent_again(redis: RedisClient, prefix: str) -> None:
    """A pipeline of script calls and other commands: each reply in its place, each command run once."""
    await redis.script_flush()
    pipe = ScriptPipeline(redis)
    pipe.pipe.incr(f"{prefix}:counter")
    pipe.call(ECHO, [f"{prefix}:a"], [1])
    pipe.pipe.incr(f"{prefix}:counter")
    pipe.call(ECHO, [f"{prefix}:b"], [2])
    replies = await pipe.execute()
    assert replies == [1, [f"{prefix}:a".encode(), b"1"], 2, [f"{prefix}:b".encode(), b"2"]]
    assert await redis.get(f"{prefix}:counter") == b"2"


async def test_without_resend_the_script_is_loaded_and_noscript_left_in_place(
    redis: RedisClient, prefix: str
) -> None:
    """``execute(resend=False)``: the caller sends the forgotten calls again itself, and they work."""
    await redis.script_flush()
    pipe = ScriptPipeline(redis)
    pipe.call(ECHO, [f"{prefix}:a"], [1])
    (reply,) = await pipe.execute(resend=False)
    assert isinstance(reply, NoScriptError)
    assert await redis.script_exists(ECHO.sha) == [True]


async def test_a_script_error_is_raised_by_run(redis: RedisClient) -> None:
    """An error the script returns is raised by ``run`` (and returned as a value by a pipeline)."""
    with pytest.raises(ResponseError, match="no good"):
        await run(redis, FAIL, [], [])
    pipe = ScriptPipeline(redis)
    pipe.call(FAIL, [], [])
    (reply,) = await pipe.execute()
    assert isinstance(reply, ResponseError)


async def test_every_script_of_the_relay_compiles(redis: RedisClient) -> None:
    """Redis accepts each script's source, and names it by the SHA the relay calls it by."""
    for script in (INGEST, TAKE, COMPLETE, WRITE, ACQUIRE, SETTLE):
        assert await redis.script_load(script.source) == script.sha
