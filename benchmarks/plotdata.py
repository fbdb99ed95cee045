"""The saved results (the ``--json`` file) as figures to draw: one per workload family.

Everything here reads the JSON dict, not a live run, so ``--plot-from`` redraws plots of any
saved run, older files included, without running anything again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from benchmarks.participants import FLOOR, OFFICIAL, OURS
from benchmarks.stats import percentile

__all__ = [
    "FAMILIES",
    "Figure",
    "LatencyPanel",
    "RatePanel",
    "Spread",
    "figures",
    "strip_quantile",
]

# Workload -> (family, figure title). Families are what a reader compares at once.
FAMILIES: dict[str, tuple[str, str]] = {
    "put": ("writes", "Writes: put and put_writes, one call at a time"),
    "put_writes": ("writes", "Writes: put and put_writes, one call at a time"),
    "reads": ("reads", "Reads: get_tuple and list by thread length"),
    "agent": ("agent", "A 25-step agent run, one at a time"),
    "saver_concurrency": ("saver_concurrency", "Saver calls under concurrency, pool of 10"),
    "agent_concurrency": ("agent_concurrency", "Concurrent agent runs"),
    "defaults": ("defaults", "Savers built with from_conn_string(dsn) defaults"),
    "store": ("store", "Store operations"),
}


@dataclass(frozen=True)
class Spread:
    """One participant's latency distribution, in ms."""

    participant: str
    minimum: float
    p50: float
    p90: float
    p99: float
    maximum: float


@dataclass(frozen=True)
class LatencyPanel:
    """One table row's distributions; `title` is the row's label without its percentile."""

    title: str
    spreads: tuple[Spread, ...]


@dataclass(frozen=True)
class RatePanel:
    """Per-window rates against concurrency; `title` is the rows' label with N for the level."""

    title: str
    unit: str
    workload: str
    lines: dict[str, list[tuple[int, list[float]]]]


@dataclass(frozen=True)
class Figure:
    family: str
    title: str
    panels: tuple[LatencyPanel | RatePanel, ...]


def strip_quantile(metric: str) -> str:
    """'put, 1 KB channel value, p50' -> 'put, 1 KB channel value'."""
    return re.sub(r",? p50$", "", metric)


def _spread(participant: str, summary: dict[str, float]) -> Spread:
    ms = {k: summary[k] * 1000 for k in ("min", "p50", "p90", "p99", "max")}
    return Spread(participant, ms["min"], ms["p50"], ms["p90"], ms["p99"], ms["max"])


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)


def _series_by_value(row: dict[str, Any], candidates: dict[str, Any], pick: Any) -> str:
    """Files saved before rows named their series: the series whose figures are the row's."""
    prefix = f"{row['workload']}: "
    for name, by_participant in candidates.items():
        if not name.startswith(prefix):
            continue
        if all(
            _close(row[column], pick(by_participant.get(participant)))
            for column, participant in (("official", OFFICIAL), ("ours", OURS))
        ):
            return name.removeprefix(prefix)
    return ""


def _latency_ms(summary: dict[str, float] | None) -> float | None:
    return None if summary is None else summary["p50"] * 1000


def _median(rates: list[float] | None) -> float | None:
    return percentile(rates, 50) if rates else None


def _floor_by_value(row: dict[str, Any], latencies: dict[str, Any]) -> str:
    prefix = f"{row['workload']}: "
    for name, by_participant in latencies.items():
        if name.startswith(prefix) and _close(row["floor"], _latency_ms(by_participant.get(FLOOR))):
            return name.removeprefix(prefix)
    return ""


def _latency_panel(row: dict[str, Any], latencies: dict[str, Any]) -> LatencyPanel | None:
    series = row.get("series") or _series_by_value(row, latencies, _latency_ms)
    by_participant = latencies.get(f"{row['workload']}: {series}")
    if not series or not by_participant:
        return None
    spreads = [_spread(p, by_participant[p]) for p in (OFFICIAL, OURS) if p in by_participant]
    floor_series = row.get("floor_series")
    if floor_series is None and row.get("floor") is not None:
        floor_series = _floor_by_value(row, latencies)
    floor = latencies.get(f"{row['workload']}: {floor_series}", {}).get(FLOOR)
    if floor_series and floor:
        spreads.append(_spread(FLOOR, floor))
    return LatencyPanel(strip_quantile(row["metric"]), tuple(spreads))


def _rate_panels(rows: list[dict[str, Any]], rates: dict[str, Any]) -> list[RatePanel]:
    panels: dict[tuple[str, str], RatePanel] = {}
    for row in rows:
        series = row.get("series") or _series_by_value(row, rates, _median)
        by_participant = rates.get(f"{row['workload']}: {series}")
        if not series or not by_participant or "@" not in series:
            continue
        mode, _, level = series.partition("@")
        title = re.sub(rf"\b{level}\b", "N", row["metric"], count=1)
        fresh = RatePanel(title, row["unit"], row["workload"], {})
        panel = panels.setdefault((row["workload"], mode), fresh)
        for participant, values in by_participant.items():
            panel.lines.setdefault(participant, []).append((int(level), list(values)))
    return list(panels.values())


def figures(data: dict[str, Any]) -> list[Figure]:
    """The saved run `data` as one figure per workload family, panels in table order."""
    latencies = data.get("latency_seconds", {})
    rates = data.get("rates_per_window", {})
    panels: dict[str, list[LatencyPanel | RatePanel]] = {}
    titles: dict[str, str] = {}
    rows = [row for row in data["rows"] if row["workload"] in FAMILIES]
    for row in rows:
        titles.setdefault(*FAMILIES[row["workload"]])
    for rate_panel in _rate_panels([row for row in rows if row["higher_is_better"]], rates):
        panels.setdefault(FAMILIES[rate_panel.workload][0], []).append(rate_panel)
    for row in rows:
        if row["unit"] == "ms" and row["key"].endswith(".p50"):
            panel = _latency_panel(row, latencies)
            if panel is not None:
                panels.setdefault(FAMILIES[row["workload"]][0], []).append(panel)
    return [Figure(f, t, tuple(panels[f])) for f, t in titles.items() if f in panels]
