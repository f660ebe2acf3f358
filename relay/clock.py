"""Time and randomness, handed in as one small object: no logic of the relay reads a clock or
draws a random number itself, so a test fixes both (``Clock(now=lambda: T, rand=lambda: 0.5)``)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    now: Callable[[], float] = time.time
    """Unix seconds."""
    rand: Callable[[], float] = random.random
    """Uniform in [0, 1)."""

    def now_ms(self) -> int:
        return int(self.now() * 1000)


SYSTEM = Clock()
"""The machine's clock and random source."""
