"""``make chaos``: every fault scenario with real traffic, the fuzzers for a bounded time, and the
results table written to docs/chaos-results.md.

    python -m tests.chaos [--scale 10] [--volume 100000] [--fuzz-seconds 60] [--only 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.chaos.deployment import Tally
from tests.chaos.scenarios import SCENARIOS, volume_and_fairness

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "chaos-results.md"
COLUMNS = ("sent", "acknowledged", "expected", "delivered", "lost", "duplicates")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--scale", type=int, default=10, help="traffic multiplier (default 10)")
    parser.add_argument("--volume", type=int, default=100_000, help="callbacks in scenario 9")
    parser.add_argument("--fuzz-seconds", type=int, default=60, help="atheris time, 0 to skip")
    parser.add_argument("--only", help="run only the scenarios whose name starts with this")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the table goes")
    return parser.parse_args()


async def _run(name: str, scale: int, volume: int) -> tuple[Tally, float]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="relay-chaos-") as tmp:
        if SCENARIOS[name] is volume_and_fairness:
            tally = await volume_and_fairness(Path(tmp), max(1, volume // 500))
        else:
            tally = await SCENARIOS[name](Path(tmp), scale)
    return tally, time.monotonic() - started


def _notes(notes: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in notes.items())


def _table(rows: list[tuple[str, Tally, float]]) -> str:
    head = "| scenario | " + " | ".join(COLUMNS) + " | seconds | notes |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for name, tally, seconds in rows:
        values = " | ".join(str(getattr(tally, c)) for c in COLUMNS)
        lines.append(f"| {name} | {values} | {seconds:.1f} | {_notes(tally.notes)} |")
    return "\n".join(lines)


def _fuzz(seconds: int) -> str:
    if seconds <= 0:
        return "fuzzing skipped (--fuzz-seconds 0)"
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds * 3 + 120,
    )
    tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
    verdict = "no crash found" if result.returncode == 0 else f"exit {result.returncode}"
    return f"atheris, {seconds} s over the callback parser and the selector: {verdict} ({' / '.join(tail)})"


def _update(text: str, table: str, args: argparse.Namespace) -> str:
    """The results page with the rows of the scenarios just run replaced (or added, in order),
    and a line saying when and how they were run."""
    lines = text.splitlines()
    fresh = {row.split(" | ")[0]: row for row in table.splitlines()[2:]}
    rows = [n for n, line in enumerate(lines) if line.startswith("| ") and line[2:3].isdigit()]
    kept = {lines[n].split(" | ")[0]: lines[n] for n in rows}
    merged = {**kept, **fresh}
    ordered = sorted(merged.values(), key=lambda row: int(row[2:].split(" ", 1)[0]))
    first, last = rows[0], rows[-1]
    names = ", ".join(f"'{k[2:]}'" for k in fresh)
    command = f"python -m tests.chaos --only {args.only} --scale {args.scale}"
    note = f"{names}: rerun alone on {time.strftime('%Y-%m-%d')} (`{command}`)."
    tail = [line for line in lines[last + 1 :] if not line.startswith(f"{names}: rerun alone")]
    return "\n".join([*lines[:first], *ordered, *tail, "", note]).rstrip() + "\n"


def main() -> int:
    args = _arguments()
    rows: list[tuple[str, Tally, float]] = []
    for name in SCENARIOS:
        if args.only and not name.startswith(args.only):
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        tally, seconds = asyncio.run(_run(name, args.scale, args.volume))
        rows.append((name, tally, seconds))
        print(f"  lost {tally.lost}, duplicates {tally.duplicates}, {seconds:.1f} s", file=sys.stderr)
    table = _table(rows)
    if args.only and args.output.exists():  # the other scenarios' rows stay as they were
        args.output.write_text(_update(args.output.read_text(), table, args))
        print(table)
        return 1 if any(t.lost for _, t, _ in rows) else 0
    fuzz = _fuzz(args.fuzz_seconds) if not args.only else "fuzzing skipped (--only)"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text = (
        "# Fault scenarios: results\n\n"
        f"Written by `make chaos` (`python -m tests.chaos --scale {args.scale} --volume {args.volume}`) "
        f"on {time.strftime('%Y-%m-%d')}, {machine}. Each scenario runs real processes on loopback: "
        "a redis-server, `relay serve` and `relay work` processes, and a sink that counts deliveries "
        "by `webhook-id`. *expected* is acknowledged events times matching webhooks; *lost* is "
        "expected minus delivered and must be 0; *duplicates* are repeated 2xx deliveries of one "
        "`webhook-id` (at-least-once).\n\n"
        f"{table}\n\n{fuzz}\n"
    )
    args.output.write_text(text)
    print(table)
    print(fuzz)
    return 1 if any(t.lost for _, t, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
