"""relay.console.tail.fresh: which records of a log the live tail has not sent yet. Pure."""

from __future__ import annotations

import orjson

from relay.console.tail import fresh


def _r(at: int) -> bytes:
    return orjson.dumps({"at": at, "deliveryId": f"msg_{at}"})


def test_before_anything_was_sent_records_after_since_are_new() -> None:
    """The first read sends what came after the page was drawn, oldest first."""
    assert fresh([_r(30), _r(20), _r(10)], None, 15) == [_r(20), _r(30)]


def test_records_after_the_last_sent_are_new() -> None:
    """Later reads send what is newer than the newest record already sent."""
    assert fresh([_r(50), _r(40), _r(30), _r(20)], _r(30), 0) == [_r(40), _r(50)]


def test_nothing_new() -> None:
    """A log whose newest record was sent gives nothing."""
    assert fresh([_r(30), _r(20)], _r(30), 0) == []


def test_more_new_than_read_sends_all_read() -> None:
    """When the last sent record is no longer among those read, every record read is new."""
    assert fresh([_r(90), _r(80)], _r(30), 0) == [_r(80), _r(90)]
