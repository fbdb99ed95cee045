"""One PNG: latency distribution per operation, and throughput against concurrency."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from benchmarks.participants import FLOOR, OFFICIAL, OURS
from benchmarks.runner import SuiteResult
from benchmarks.workloads.base import Workload

__all__ = ["plot"]

_COLORS = {OFFICIAL: "#d62728", OURS: "#1f77b4", FLOOR: "#7f7f7f"}
_NAMES = {OFFICIAL: "official", OURS: "ours", FLOOR: "floor"}
_LATENCY_WORKLOADS = ("put", "put_writes", "reads", "agent", "defaults", "store")
_THROUGHPUT = (
    ("saver_concurrency", "sync", "saver: sync threads, pool of 10", "ops/s"),
    ("saver_concurrency", "async", "saver: async tasks, pool of 10", "ops/s"),
    ("agent_concurrency", "loopback", "agents: loopback", "runs/s"),
    ("agent_concurrency", "proxy", "agents: through ~1 ms proxy", "runs/s"),
)


def _latency_panels(result: SuiteResult) -> list[tuple[str, dict[str, list[float]]]]:
    panels = []
    for workload in result.workloads:
        if workload.name not in _LATENCY_WORKLOADS:
            continue
        for series, by_participant in workload.samples.latencies.items():
            data = {p: [s * 1000 for s in v] for p, v in by_participant.items() if v}
            if data:
                panels.append((f"{workload.name}: {series}", data))
    return panels


def _throughput_panels(
    result: SuiteResult,
) -> list[tuple[str, str, dict[str, list[tuple[int, list[float]]]]]]:
    by_name: dict[str, Workload] = {w.name: w for w in result.workloads}
    panels = []
    for name, prefix, title, unit in _THROUGHPUT:
        workload = by_name.get(name)
        if workload is None:
            continue
        lines: dict[str, list[tuple[int, list[float]]]] = {}
        for series, by_participant in workload.samples.rates.items():
            mode, _, level = series.partition("@")
            if mode != prefix:
                continue
            for participant, rates in by_participant.items():
                lines.setdefault(participant, []).append((int(level), rates))
        if lines:
            panels.append((title, unit, lines))
    return panels


def plot(result: SuiteResult, path: Path) -> Path:
    """Draw the run's plots into `path` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency = _latency_panels(result)
    throughput = _throughput_panels(result)
    cols = 5
    lat_rows = math.ceil(len(latency) / cols) if latency else 0
    rows = lat_rows + (1 if throughput else 0)
    fig = plt.figure(figsize=(3.2 * cols, 2.8 * max(rows, 1)), dpi=72, layout="constrained")
    grid = fig.add_gridspec(max(rows, 1), cols * 5)
    for i, (title, data) in enumerate(latency):
        r, c = divmod(i, cols)
        ax = fig.add_subplot(grid[r, c * 5 : c * 5 + 5])
        _box(ax, title, data)
    if throughput:
        width = cols * 5 // len(throughput)
        for i, (title, unit, lines) in enumerate(throughput):
            ax = fig.add_subplot(grid[lat_rows, i * width : (i + 1) * width])
            _lines(ax, title, unit, lines)
    fig.suptitle(
        "checkpoint-pg (ours) vs langgraph-checkpoint-postgres (official): "
        "latency per call (ms; box p25-p75, line p50, whiskers p1-p99) and throughput",
        fontsize=10,
    )
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _box(ax: Any, title: str, data: dict[str, list[float]]) -> None:
    order = [p for p in (OFFICIAL, OURS, FLOOR) if p in data]
    parts = ax.boxplot(
        [data[p] for p in order],
        whis=(1, 99),
        showfliers=False,
        patch_artist=True,
        widths=0.6,
        medianprops={"color": "black"},
    )
    for patch, participant in zip(parts["boxes"], order, strict=True):
        patch.set_facecolor(_COLORS[participant])
        patch.set_alpha(0.6)
    ax.set_xticks(range(1, len(order) + 1), [_NAMES[p] for p in order], fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("ms", fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)


def _lines(ax: Any, title: str, unit: str, lines: dict[str, list[tuple[int, list[float]]]]) -> None:
    for participant in (OFFICIAL, OURS):
        points = sorted(lines.get(participant, []))
        if not points:
            continue
        xs = [n for n, _ in points]
        mids = [statistics.median(r) for _, r in points]
        low = [m - min(r) for m, (_, r) in zip(mids, points, strict=True)]
        high = [max(r) - m for m, (_, r) in zip(mids, points, strict=True)]
        ax.errorbar(
            xs,
            mids,
            yerr=[low, high],
            marker="o",
            capsize=3,
            color=_COLORS[participant],
            label=_NAMES[participant],
        )
    levels = sorted({n for points in lines.values() for n, _ in points})
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(n) for n in levels])
    ax.minorticks_off()
    ax.set_xlabel("concurrency", fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
