"""A progress bar on stderr for commands that go through many items."""

from __future__ import annotations

from typing import TextIO

PROGRESS_FROM = 20
"""A bar is drawn for at least this many items."""


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """``[#######.......]  120/500``. Pure."""
    filled = width if total <= 0 else int(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total}"


class Progress:
    """``step()`` per item; the bar is redrawn each percent. ``shown``: whether to draw at all
    (default: for ``PROGRESS_FROM`` items or more)."""

    def __init__(self, total: int, label: str, out: TextIO, *, shown: bool | None = None) -> None:
        self.total, self.label, self.out = total, label, out
        self.shown = total >= PROGRESS_FROM if shown is None else shown
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if self.shown and (self.done == self.total or self.done % max(1, self.total // 100) == 0):
            self.out.write(f"\r{self.label} {progress_bar(self.done, self.total)}")
            self.out.flush()

    def finish(self) -> None:
        if self.shown:
            self.out.write("\n")
            self.out.flush()
