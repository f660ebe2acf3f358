"""CPU caps for benchmark processes: a cgroup of its own per process, holding it to a share of one CPU.

- cgroup v1: a child of the ``cpu`` controller's hierarchy, ``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us``.
- cgroup v2: a child of ``relay-bench/`` under the unified hierarchy (when the ``cpu`` controller
  is the unified one's), ``cpu.max``.

Either way the group's ``cpu.stat`` says how many scheduling periods it ran in and in how many it
was throttled: the proof that the cap held. ``controller()`` is None where no hierarchy is
writable (not root, a container without the controller): the benchmark then says so and falls
back to CPU time. The parsing is pure; the rest writes under ``/sys/fs/cgroup``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

PERIOD_US = 100_000
"""The scheduling period of a cap: 100 ms, the kernel's default."""
MOUNTS = Path("/proc/self/mounts")
V2_PARENT = "relay-bench"
"""v2: the caps' parent group (a group with processes of its own cannot enable controllers)."""

_names = itertools.count(1)


@dataclass(frozen=True)
class Throttling:
    """A group's ``cpu.stat``: periods it ran in, periods it was throttled in, and for how long."""

    periods: int
    throttled: int
    throttled_seconds: float

    def __sub__(self, other: Throttling) -> Throttling:
        return Throttling(
            self.periods - other.periods,
            self.throttled - other.throttled,
            self.throttled_seconds - other.throttled_seconds,
        )

    def __add__(self, other: Throttling) -> Throttling:
        return Throttling(
            self.periods + other.periods,
            self.throttled + other.throttled,
            self.throttled_seconds + other.throttled_seconds,
        )


NO_THROTTLING = Throttling(0, 0, 0.0)


def parse_cpu_stat(text: str) -> Throttling:
    """``cpu.stat`` of v1 (``throttled_time`` in ns) or v2 (``throttled_usec``). Pure."""
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[name] = int(value)
    if "throttled_usec" in values:
        seconds = values["throttled_usec"] / 1e6
    else:
        seconds = values.get("throttled_time", 0) / 1e9
    return Throttling(values.get("nr_periods", 0), values.get("nr_throttled", 0), seconds)


def quota_us(cpus: float, period_us: int = PERIOD_US) -> int:
    """The quota of a cap of ``cpus`` (0.1: a tenth of one CPU) per period; at least 1 ms. Pure."""
    if cpus <= 0:
        raise ValueError("a CPU cap must be above 0")
    return max(1_000, round(cpus * period_us))


def find_hierarchies(mounts: str) -> tuple[Path | None, Path | None]:
    """From ``/proc/self/mounts``: the v1 hierarchy holding the ``cpu`` controller, and the v2
    (unified) mount. Pure."""
    v1 = v2 = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        path, kind, options = Path(fields[1]), fields[2], fields[3].split(",")
        if kind == "cgroup" and "cpu" in options and v1 is None:
            v1 = path
        elif kind == "cgroup2" and v2 is None:
            v2 = path
    return v1, v2


@dataclass(frozen=True)
class Controller:
    """Where caps are made: ``version`` 1 or 2, and the directory their groups go in."""

    version: int
    base: Path

    def cap(self, name: str, cpus: float) -> Cap:
        """A new group named ``name`` (made unique) holding its processes to ``cpus`` of one CPU."""
        path = self.base / f"{name}-{os.getpid()}-{next(_names)}"
        path.mkdir()
        try:
            if self.version == 1:
                (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(quota_us(cpus)))
            else:
                (path / "cpu.max").write_text(f"{quota_us(cpus)} {PERIOD_US}")
        except OSError:
            path.rmdir()
            raise
        return Cap(path, cpus, self.base)


@dataclass(frozen=True)
class Cap:
    """One group: processes added to it share ``cpus`` of one CPU. ``remove()`` when done."""

    path: Path
    cpus: float
    home: Path
    """Where its processes go back to if any is alive at ``remove()``."""

    def add(self, pid: int) -> None:
        """Move the process (all its threads) into the group; children it starts stay in it."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def throttling(self) -> Throttling:
        try:
            return parse_cpu_stat((self.path / "cpu.stat").read_text())
        except OSError:
            return NO_THROTTLING

    def remove(self) -> None:
        """Delete the group; a process still in it is moved back out first."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                (self.home / "cgroup.procs").write_text(str(pid))
        with contextlib.suppress(FileNotFoundError):
            self.path.rmdir()


def _writable_v1(root: Path) -> Controller | None:
    if not (root / "cpu.cfs_quota_us").exists():
        return None
    return Controller(1, root) if _can_make_group(root) else None


def _writable_v2(root: Path) -> Controller | None:
    try:
        if "cpu" not in (root / "cgroup.controllers").read_text().split():
            return None
        parent = root / V2_PARENT
        if "cpu" not in (root / "cgroup.subtree_control").read_text().split():
            (root / "cgroup.subtree_control").write_text("+cpu")
        parent.mkdir(exist_ok=True)
        if "cpu" not in (parent / "cgroup.subtree_control").read_text().split():
            (parent / "cgroup.subtree_control").write_text("+cpu")
    except OSError:
        return None
    return Controller(2, parent) if _can_make_group(parent) else None


def _can_make_group(base: Path) -> bool:
    probe = base / f"relay-bench-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def controller(mounts: Path = MOUNTS) -> Controller | None:
    """The writable CPU controller of this machine, v1 first; None where there is none."""
    try:
        v1, v2 = find_hierarchies(mounts.read_text())
    except OSError:
        return None
    if v1 is not None and (found := _writable_v1(v1)):
        return found
    if v2 is not None:
        return _writable_v2(v2)
    return None
