"""Per-host gates: a quick host queues in the process; a slow or silent one is cut back."""

from __future__ import annotations

import asyncio

import pytest

from relay.delivery.capacity import Capacity
from relay.delivery.hosts import HostGates, host_of

HOST = "hooks.example:443"


async def waiting(gates: HostGates, n: int) -> list[asyncio.Task[bool]]:
    tasks = [asyncio.create_task(gates.enter(HOST)) for _ in range(n)]
    await asyncio.sleep(0)  # each reaches the host's queue
    return tasks


async def test_free_slots_are_taken_without_waiting() -> None:
    """Up to the limit, `try_enter` takes a slot at once; past it, it does not."""
    gates = HostGates(limit=2)
    assert [gates.try_enter(HOST) for _ in range(3)] == [True, True, False]
    assert gates.busy(HOST) == 2


async def test_an_unknown_host_queues_in_the_process() -> None:
    """Before anything is known of a host, its deliveries wait in its queue: none is put off."""
    gates = HostGates(limit=2, max_wait=10)
    assert gates.try_enter(HOST) and gates.try_enter(HOST)
    queued = await waiting(gates, 20)
    assert not any(t.done() for t in queued) and gates.busy(HOST) == 22
    for _ in range(22):
        gates.leave(HOST, 0.001)
        await asyncio.sleep(0)
    assert all(t.result() for t in queued)


async def test_a_silent_host_is_cut_back_after_max_wait() -> None:
    """No answer within max_wait: the host counts as that slow; its queue keeps what it can
    serve within max_wait (the limit's worth), the rest are put off."""
    gates = HostGates(limit=2, max_wait=0.05)
    assert gates.try_enter(HOST) and gates.try_enter(HOST)
    queued = await waiting(gates, 10)
    await asyncio.wait(queued, timeout=2, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.sleep(0)
    refused = [t for t in queued if t.done() and t.result() is False]
    assert len(refused) == 8 and gates.busy(HOST) == 4
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


async def test_a_host_turning_slow_keeps_a_short_queue() -> None:
    """A measured slow answer cuts the waiting beyond max_wait's worth; a quick one keeps all."""
    gates = HostGates(limit=2, max_wait=1.0)
    assert gates.try_enter(HOST) and gates.try_enter(HOST)
    queued = await waiting(gates, 10)
    gates.leave(HOST, 0.5)  # 0.5 s each: 4 may wait (2 rounds of 2); then one slot passes on
    await asyncio.sleep(0)
    assert sum(1 for t in queued if t.done() and t.result() is False) == 6
    assert gates.busy(HOST) == 5 and gates.expected_wait(HOST) == 1.0
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


def test_capacity_reserves_no_more_than_there_is() -> None:
    """A reservation takes what is free, never more; what is given back is free again."""
    capacity = Capacity(10, least=3)
    assert capacity.reserve(8) == 8 and capacity.reserve(8) == 2 and capacity.reserve(1) == 0
    capacity.give(3)
    assert capacity.room() == 3 and capacity.reserve(100) == 3


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://Example.com/a", "example.com:80"),
        ("https://example.com/a", "example.com:443"),
        ("http://example.com:8080/a", "example.com:8080"),
        ("http://[::1]:9/a", "::1:9"),
    ],
)
def test_host_of(url: str, host: str) -> None:
    """Per-host limits count by lowercased host and port."""
    assert host_of(url) == host
