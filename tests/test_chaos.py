"""The reliability suite's fault scenarios, at a small scale: nothing acknowledged is ever lost.

``make chaos`` runs the same scenarios with more traffic and writes the results table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import scenarios

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def test_worker_killed_mid_delivery_loses_nothing(tmp_path: Path) -> None:
    """Scenario 1: SIGKILL a worker mid-delivery; the other finishes; nothing lost."""
    tally = await scenarios.worker_killed_mid_delivery(tmp_path, 1)
    assert tally.acknowledged == tally.sent
    assert tally.lost == 0


async def test_worker_killed_before_ack_redelivers_with_the_same_id(tmp_path: Path) -> None:
    """Scenario 2: a worker dies after a 2xx before its ack; the redelivery has the same webhook-id."""
    tally = await scenarios.worker_killed_before_ack(tmp_path, 1)
    assert tally.lost == 0
    assert tally.duplicates >= 1  # the entry whose ack died with the worker came again,
    assert tally.notes["ids not expected"] == 0  # under the same webhook-id, not a new one


async def test_redis_killed_and_restarted_from_aof_loses_nothing(tmp_path: Path) -> None:
    """Scenario 3: Redis SIGKILLed and restarted from its AOF; every acknowledged callback arrives."""
    tally = await scenarios.redis_restarted_with_aof(tmp_path, 1)
    assert tally.acknowledged == tally.sent
    assert tally.lost == 0


async def test_redis_restarted_empty_is_survived_without_error_spin(tmp_path: Path) -> None:
    """Scenario 4: without persistence, 503 while away; workers recover; bounded logs and CPU."""
    tally = await scenarios.redis_restarted_empty(tmp_path, 1)
    assert tally.notes["listener status during outage"] == 503
    assert tally.notes["worker log lines during 3 s outage"] <= 30
    assert tally.notes["worker CPU seconds during 3 s outage"] < 0.5
    assert tally.lost == 0


async def test_flaky_callback_gets_everything_on_schedule(tmp_path: Path) -> None:
    """Scenario 6: random 500s, resets and slow answers; all arrives, no retry comes early."""
    tally = await scenarios.flaky_callback(tmp_path, 1)
    assert tally.lost == 0
    assert tally.notes["retries sooner than the schedule"] == 0
    assert tally.notes["requests"] > tally.expected  # failures really happened


async def test_poison_entry_is_dead_lettered_and_traffic_flows(tmp_path: Path) -> None:
    """Scenario 7: a poison entry per partition goes to the dead letters; the rest is delivered."""
    tally = await scenarios.poison_entry(tmp_path, 1)
    assert tally.lost == 0
    assert tally.notes["poison entries dead-lettered"] == 2


async def test_sigterm_under_load_drains_and_exits_zero(tmp_path: Path) -> None:
    """Scenario 8: SIGTERM mid-load exits 0 within the grace period; nothing lost."""
    tally = await scenarios.sigterm_under_load(tmp_path, 1)
    assert tally.notes["exit code"] == 0
    assert tally.notes["exit took s"] < 3 + 2
    assert tally.lost == 0


async def test_volume_with_several_listeners_and_workers(tmp_path: Path) -> None:
    """Scenario 9: 2 listeners, 2 workers, 3 webhooks: every callback reaches every webhook."""
    tally = await scenarios.volume_and_fairness(tmp_path, 1)
    assert tally.lost == 0
    assert set(tally.notes["deliveries per webhook"].values()) == {tally.expected // 3}


async def test_flaky_link_between_listener_and_redis(tmp_path: Path) -> None:
    """Scenario 5 end to end: resets and delays on the listener's Redis link; each event once."""
    tally = await scenarios.flaky_link_to_redis(tmp_path, 1)
    assert tally.notes["proxy resets"] > 0
    assert tally.notes["events stored"] == tally.notes["events acknowledged"]
    assert tally.lost == 0


async def test_trimming_never_removes_unacknowledged_entries(tmp_path: Path) -> None:
    """Scenario 10: trims with zero retention during a draining backlog lose nothing."""
    tally = await scenarios.trimming_under_backlog(tmp_path, 1)
    assert tally.notes["entries trimmed"] > 0  # trimming really happened
    assert tally.lost == 0


async def test_webhook_churn_reads_what_was_written(tmp_path: Path) -> None:
    """Scenario 11: webhooks created and deleted under load: none misses an event sent after its
    create was answered, none gets one sent after its delete was answered, none an attempt more
    than 1 s after its delete; the steady webhook gets everything."""
    tally = await scenarios.webhook_churn(tmp_path, 1)
    assert tally.lost == 0
    assert tally.notes["owed (sent after the create, matched before the delete)"] > 0  # not vacuous
    assert tally.notes["missed"] == 0
    assert tally.notes["sent after the delete, delivered"] == 0
    assert tally.notes["attempts over 1 s after the delete"] == 0
