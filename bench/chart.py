"""The PNG: each figure as a bar (median) with its min-max range, the ratios against their targets."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from bench.results import Report
from bench.stats import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _find(report: Report, name: str) -> Figure | None:
    for row in report.rows:
        if row.name == name:
            return row.figure
    return None


def _bars(ax: Axes, report: Report, names: list[tuple[str, str]], title: str, unit: str) -> None:
    """``names``: (row name, label); rows missing from the report are left out."""
    found = [
        (label, fig) for name, label in names if (fig := _find(report, name)) and not math.isnan(fig.median)
    ]
    labels = [label for label, _ in found]
    medians = [fig.median for _, fig in found]
    errors = [[fig.median - fig.low for _, fig in found], [fig.high - fig.median for _, fig in found]]
    ax.bar(labels, medians, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", labelsize=7, labelrotation=20)


def _per(fig: Figure, n: int) -> Figure:
    """A ratio of N processes to one, as a share of N (1.0: perfect scaling)."""
    return Figure.of([r / n for r in fig.runs])


def _ratios(ax: Axes, report: Report) -> None:
    wanted = [
        ("relay / ceiling, c64", "ingest c64\n(>= 0.45)", 0.45, 1),
        ("relay / minimal loop (aiohttp)", "delivery\n(>= 0.9)", 0.9, 1),
        ("relay / minimal loop (relay client)", "delivery, like\nfor like (>= 0.8)", 0.8, 1),
        ("8 workers / 1", "8 workers / 8x1\n(>= 0.9)", 0.9, 8),  # scale-out, capped: per process
        ("4 listeners / 1", "4 listeners / 4x1\n(>= 0.9)", 0.9, 4),
    ]
    found = [
        (label, _per(fig, per), target) for name, label, target, per in wanted if (fig := _find(report, name))
    ]
    for n, (_, fig, target) in enumerate(found):
        ok = math.isnan(target) or fig.median >= target
        spread = [[fig.median - fig.low], [fig.high - fig.median]]
        ax.bar(n, fig.median, yerr=spread, capsize=4, color="#55a868" if ok else "#c44e52")
        if not math.isnan(target):
            ax.hlines(target, n - 0.4, n + 0.4, colors="black", linestyles="dashed")
    ax.set_xticks(range(len(found)), [label for label, _, _ in found], fontsize=7)
    ax.set_title("ratios (dashed: target)", fontsize=10)


def _matching(ax: Axes, report: Report) -> None:
    curve = report.sections.get("matching", {}).get("curve", {})
    sizes = sorted(int(k) for k in curve)
    for key, label in (("matching", "WebhookView.matching"), ("plan", "parse entry + match")):
        ax.plot(sizes, [curve[str(s)][key]["median"] for s in sizes], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_title("matching cost vs webhooks", fontsize=10)
    ax.set_xlabel("webhooks")
    ax.set_ylabel("us per event")
    ax.legend(fontsize=7)


def draw(report: Report, path: Path) -> Path | None:
    """Write the chart; None when matplotlib is not installed (``pip install -e '.[bench]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    _bars(axes[0][0], report, [
        ("relay serve, c16", "relay c16"), ("bare aiohttp ceiling, c16", "ceiling c16"),
        ("relay serve, c64", "relay c64"), ("bare aiohttp ceiling, c64", "ceiling c64"),
    ], "ingest throughput", "callbacks/s")  # fmt: skip
    _bars(axes[0][1], report, [
        ("relay p50, c64", "relay p50"), ("relay p99, c64", "relay p99"), ("ceiling p99, c64", "ceiling p99"),
        ("callback 2xx -> sink, p50", "e2e p50"), ("callback 2xx -> sink, p99", "e2e p99"),
    ], "latency (ingest at c64; end to end at half capacity)", "ms")  # fmt: skip
    _bars(axes[0][2], report, [
        ("minimal loop (aiohttp client)", "minimal loop"),
        ("minimal loop, relay client and acks", "minimal loop,\nrelay client"),
        ("relay work, 1 process, every feature", "relay 1 worker"),
        ("2 relay work processes", "relay 2 workers"),
    ], "delivery throughput", "events/s")  # fmt: skip
    _bars(axes[1][0], report, [
        ("relay CPU per callback, c64", "ingest relay"), ("ceiling CPU per request, c64", "ingest ceiling"),
        ("relay CPU per event", "delivery relay"), ("minimal loop CPU per event (aiohttp)", "minimal loop"),
        ("minimal loop CPU per event (relay client)", "minimal loop,\nrelay client"),
        ("redis CPU per callback, c64", "redis (ingest)"),
        ("redis CPU per event (relay)", "redis (delivery)"),
    ], "CPU per item", "us")  # fmt: skip
    _matching(axes[1][1], report)
    _ratios(axes[1][2], report)
    machine = report.machine
    fig.suptitle(
        f"relay benchmarks, {report.started:%Y-%m-%d} ({report.mode}) on {machine.get('nproc')} x "
        f"{machine.get('cpu_model')}; bars: median, whiskers: min-max",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
