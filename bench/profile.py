"""Where the time goes: ``py-spy record`` on a process under load, summed up by function.

``py-spy`` writes collapsed stacks (``frame;frame;frame count``); ``summarise`` turns them into
the share of samples each function holds itself (self) and with what it calls (total). Pure.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LOCATION = re.compile(r" \((?P<file>[^():]+):\d+\)$")


def frame_name(frame: str) -> str:
    """``handle (aiohttp/web_protocol.py:510)`` -> ``aiohttp/web_protocol.py:handle``."""
    match = _LOCATION.search(frame)
    if not match:
        return frame
    return f"{match.group('file')}:{frame[: match.start()]}"


@dataclass(frozen=True)
class Profile:
    samples: int
    self_share: list[tuple[str, float]]
    total_share: list[tuple[str, float]]

    def to_json(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "self": [[name, round(share, 4)] for name, share in self.self_share],
            "total": [[name, round(share, 4)] for name, share in self.total_share],
        }

    def text(self, lines: int = 15) -> str:
        out = [f"{self.samples} samples; share of samples in the function itself:"]
        out += [f"  {share:6.1%}  {name}" for name, share in self.self_share[:lines]]
        out.append("share of samples in the function and what it calls:")
        out += [f"  {share:6.1%}  {name}" for name, share in self.total_share[:lines]]
        return "\n".join(out)


def summarise(collapsed: str, top: int = 40) -> Profile:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    if not samples:
        return Profile(0, [], [])

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / samples) for name, n in counter.most_common(top)]

    return Profile(samples, shares(own), shares(total))


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path, rate: int = 250) -> Profile | None:
    """Sample ``pid`` for ``seconds`` (idle frames left out); None when py-spy is missing or
    may not attach (no ptrace permission)."""
    binary = py_spy()
    if binary is None:
        return None
    argv = [binary, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", str(rate),
            "-f", "raw", "-o", str(out)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await proc.wait()
    if proc.returncode != 0:
        return None
    return await asyncio.to_thread(_summarise_file, out)


def _summarise_file(path: Path) -> Profile | None:
    return summarise(path.read_text()) if path.exists() else None
