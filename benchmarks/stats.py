"""Samples and their summaries: percentiles, throughput, ratios. No I/O, no timing."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "LatencySummary",
    "Samples",
    "percentile",
    "ratio",
    "summarize",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values` by linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ratio(ours: float | None, official: float | None) -> float | None:
    """``ours / official``, or None when either is missing or official is zero."""
    if ours is None or official is None or official == 0 or math.isnan(ours + official):
        return None
    return ours / official


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one series of latencies, in seconds."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    minimum: float
    maximum: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "mean": self.mean,
            "min": self.minimum,
            "max": self.maximum,
        }


def summarize(values: Sequence[float]) -> LatencySummary:
    """Percentiles of `values` (NaN everywhere when there are none)."""
    if not values:
        nan = math.nan
        return LatencySummary(0, nan, nan, nan, nan, nan, nan)
    return LatencySummary(
        n=len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        mean=statistics.fmean(values),
        minimum=min(values),
        maximum=max(values),
    )


@dataclass
class Samples:
    """Everything one workload measured, keyed by series then by participant.

    `latencies` are per-call durations (seconds); `rates` are one throughput figure per
    measured window (operations per second); `values` are plain measurements (bytes, KiB).
    """

    latencies: defaultdict[str, defaultdict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    rates: defaultdict[str, defaultdict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    values: defaultdict[str, defaultdict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def latency(self, series: str, participant: str, seconds: Iterable[float]) -> None:
        self.latencies[series][participant].extend(seconds)

    def rate(self, series: str, participant: str, per_second: float) -> None:
        self.rates[series][participant].append(per_second)

    def value(self, series: str, participant: str, value: float) -> None:
        self.values[series][participant].append(value)

    def latency_of(self, series: str, participant: str) -> list[float]:
        return _lookup(self.latencies, series, participant)

    def rates_of(self, series: str, participant: str) -> list[float]:
        return _lookup(self.rates, series, participant)

    def values_of(self, series: str, participant: str) -> list[float]:
        return _lookup(self.values, series, participant)


def _lookup(table: dict[str, defaultdict[str, list[float]]], series: str, who: str) -> list[float]:
    """What `table` holds for (`series`, `who`), without adding empty entries."""
    if series in table and who in table[series]:
        return table[series][who]
    return []
