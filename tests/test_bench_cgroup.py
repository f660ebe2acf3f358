"""The scale-out benchmark's CPU caps (bench/cgroup.py): what they read, and that a cap holds a
busy process to its share (the kernel throttles it), where this machine lets us make cgroups."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cgroup import Cap, Controller, controller, find_hierarchies, parse_cpu_stat, quota_us

V1_STAT = "nr_periods 120\nnr_throttled 97\nthrottled_time 8712000000\nnr_bursts 0\nburst_time 0\n"
V2_STAT = (
    "usage_usec 1200000\nuser_usec 1000000\nsystem_usec 200000\n"
    "nr_periods 50\nnr_throttled 41\nthrottled_usec 3500000\n"
)
MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_cpu_stat_of_v1_and_v2() -> None:
    """Periods, throttled periods and time throttled, from either version's cpu.stat."""
    v1, v2 = parse_cpu_stat(V1_STAT), parse_cpu_stat(V2_STAT)
    assert (v1.periods, v1.throttled, v1.throttled_seconds) == (120, 97, pytest.approx(8.712))
    assert (v2.periods, v2.throttled, v2.throttled_seconds) == (50, 41, pytest.approx(3.5))
    assert (v1 - v2).throttled == 56


def test_hierarchies_are_found_by_controller_not_by_name() -> None:
    """The v1 mount with the cpu controller (not cpuacct's), and the unified mount."""
    assert find_hierarchies(MOUNTS) == (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/unified"))
    combined = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
    assert find_hierarchies(combined)[0] is not None
    assert find_hierarchies("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == (None, Path("/sys/fs/cgroup"))


def test_quota_of_a_tenth_of_a_cpu() -> None:
    """0.1 CPU is 10 ms of every 100 ms period; a cap of nothing is refused."""
    assert quota_us(0.1) == 10_000
    assert quota_us(2) == 200_000
    with pytest.raises(ValueError):
        quota_us(0)


@pytest.fixture
def cpu() -> Controller:
    found = controller()
    if found is None:
        pytest.skip("no writable cgroup CPU controller here (root and a writable hierarchy needed)")
    return found


@pytest.fixture
def cap(cpu: Controller) -> Iterator[Cap]:
    made = cpu.cap("relay-test", 0.1)
    yield made
    made.remove()
    assert not made.path.exists()


def test_a_capped_busy_process_is_throttled(cap: Cap) -> None:
    """A process that wants a whole CPU, in a 0.1-CPU group: the kernel throttles it, period
    after period (what the benchmark reads to show its caps held)."""
    busy = subprocess.Popen(
        [sys.executable, "-c", "import os\nos.nice(19)\nwhile True: pass"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cap.add(busy.pid)
        assert cap.pids() == [busy.pid]
        deadline = time.monotonic() + 30
        while cap.throttling().throttled < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        seen = cap.throttling()
    finally:
        busy.kill()
        busy.wait()
    assert seen.throttled >= 3
    assert seen.periods >= seen.throttled
    assert seen.throttled_seconds > 0
