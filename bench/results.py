"""What a run found: rows of figures against their targets, the machine, and the files written."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.stats import Figure


@dataclass(frozen=True)
class Row:
    section: str
    name: str
    unit: str
    figure: Figure
    target: str = ""
    met: bool | None = None
    """None: a figure reported without a target."""

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            **self.figure.to_json(),
            "target": self.target or None,
            "met": self.met,
        }


def at_least(figure: Figure, bound: float) -> bool | None:
    return None if math.isnan(figure.median) else figure.median >= bound


def below(figure: Figure, bound: float) -> bool | None:
    return None if math.isnan(figure.median) else figure.median < bound


@dataclass
class Report:
    started: datetime
    mode: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    """Raw data per benchmark (every run, curves for the chart, notes)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Benchmarks not run, and why."""

    def add(self, rows: list[Row], section: str, data: Any) -> None:
        self.rows.extend(rows)
        self.sections[section] = data

    def to_json(self) -> bytes:
        data = {
            "started": self.started.isoformat(timespec="seconds"),
            "mode": self.mode,
            "machine": self.machine,
            "rows": [row.to_json() for row in self.rows],
            "sections": self.sections,
            "skipped": self.skipped,
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    def stem(self) -> str:
        """``<date>-<HHMM>`` (``-quick`` added for a quick run): a later run the same day, a
        partial one (``--only``) included, never overwrites an earlier one."""
        stamp = self.started.strftime("%Y-%m-%d-%H%M")
        return stamp if self.mode == "full" else f"{stamp}-{self.mode}"


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(report: Report) -> str:
    """The printed table: one line per figure, its median, [min - max], and its target."""
    lines = [f"{'figure':<52} {'median':>10}  {'[min - max]':<23} {'unit':<10} target"]
    section = ""
    for row in report.rows:
        if row.section != section:
            section = row.section
            lines.append(f"-- {section}")
        f = row.figure
        spread = f"[{_fmt(f.low)} - {_fmt(f.high)}]"
        verdict = "" if row.met is None else ("ok" if row.met else "MISSED")
        target = f"{row.target} {verdict}".strip()
        lines.append(f"{row.name:<52} {_fmt(f.median):>10}  {spread:<23} {row.unit:<10} {target}")
    for name, why in report.skipped.items():
        lines.append(f"-- {name}: not run ({why})")
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """The table as Markdown, for docs/performance.md and the README."""
    m = report.machine
    lines = [
        f"Run {report.started:%Y-%m-%d %H:%M} ({report.mode}) on {m.get('nproc')} x {m.get('cpu_model')}, "
        f"{m.get('memory_gib')} GiB, Python {m.get('python')}, {m.get('redis')}, load generator "
        f"{m.get('generator')}. Median of the runs, [min - max].",
        "",
        "| figure | median | [min - max] | unit | target |",
        "|---|---:|---|---|---|",
    ]
    section = ""
    for row in report.rows:
        if row.section != section:
            section = row.section
            lines.append(f"| **{section}** | | | | |")
        f = row.figure
        verdict = "" if row.met is None else (" met" if row.met else " **missed**")
        target = f"{row.target}{verdict}" if row.target else ""
        lines.append(
            f"| {row.name} | {_fmt(f.median)} | [{_fmt(f.low)} - {_fmt(f.high)}] | {row.unit} | {target} |"
        )
    for name, why in report.skipped.items():
        lines.append(f"| **{name}**: not run ({why}) | | | | |")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model, mem_kib = "unknown", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        redis_version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except OSError:
        redis_version = "unknown"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis_version,
        "loadavg_at_start": os.getloadavg(),
    }


def write(report: Report, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report.stem()}.json"
    path.write_bytes(report.to_json())
    (out_dir / f"{report.stem()}.md").write_text(markdown(report))
    return path
