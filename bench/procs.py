"""The processes a benchmark runs: started, watched through /proc, and stopped, each on its own.

CPU time is read from ``/proc/<pid>/stat`` (user + system) before and after a run; memory from
``/proc/<pid>/status`` (``VmRSS`` now, ``VmHWM`` the peak since the process started).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.payload import SECRET

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PYTHON = sys.executable
API_USER, API_PASSWORD = "bench", "bench-api-pw"


def parse_stat_cpu(stat: str) -> float:
    """User + system CPU seconds from the text of ``/proc/<pid>/stat``."""
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLOCK_TICKS


def parse_status_kib(status: str, name: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in KiB; 0 when absent."""
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Proc:
    """One child process under watch."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    samples_kib: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        try:
            return parse_stat_cpu(Path(f"/proc/{self.pid}/stat").read_text())
        except (OSError, ValueError, IndexError):
            return float("nan")

    def _status(self, name: str) -> int:
        try:
            return parse_status_kib(Path(f"/proc/{self.pid}/status").read_text(), name)
        except OSError:
            return 0

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def peak_rss_kib(self) -> int:
        """The high-water mark of the resident set since the process started."""
        return self._status("VmHWM")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None, port: int | None = None
) -> Proc:
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Proc(name, popen, log, port)


def relay_env(redis_url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of a relay process under test: this run's Redis, secrets and port, and
    none of the caller's own ``RELAY_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_REDIS_URL=redis_url,
        RELAY_HOST="127.0.0.1",
        RELAY_PORT=str(port),
        RELAY_KEY_PREFIX="bench",
        RELAY_CALLFIRE_SECRETS=SECRET,
        RELAY_API_CREDENTIALS=f"{API_USER}:{API_PASSWORD}",
        RELAY_EGRESS_ALLOW="127.0.0.0/8",
        RELAY_LOG_FORMAT="json",
        RELAY_LOG_LEVEL="info",
    )
    env.update({f"RELAY_{k.upper()}": v for k, v in extra.items()})
    return env


async def wait_http(proc: Proc, path: str = "/healthz", within: float = 20.0) -> None:
    """Poll ``http://127.0.0.1:<port><path>`` until it answers 200, or fail with the log's tail."""
    url = f"http://127.0.0.1:{proc.port}{path}"
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited at start:\n{proc.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not answer {url} within {within}s:\n{proc.tail()}")


async def sample_rss(procs: list[Proc], stop: asyncio.Event, every: float = 0.25) -> None:
    """Record each process's RSS every ``every`` seconds until ``stop`` is set."""
    while not stop.is_set():
        for proc in procs:
            proc.samples_kib.append(proc.rss_kib())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
