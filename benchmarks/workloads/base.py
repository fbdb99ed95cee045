"""What a workload is to the runner: participants, units, rounds, and rows for the report."""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from benchmarks.participants import FLOOR, IMPLEMENTATIONS, OFFICIAL, OURS
from benchmarks.profiles import Profile
from benchmarks.stats import Samples, ratio, summarize

__all__ = ["AsyncLoop", "Row", "Workload"]

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the results table: a metric for both implementations (and the floor)."""

    workload: str
    key: str
    metric: str
    unit: str
    official: float | None
    ours: float | None
    higher_is_better: bool = False
    floor: float | None = None
    n: dict[str, int] = field(default_factory=dict)
    note: str = ""
    # The samples series the row summarises, so plots can title a series with its row's label.
    series: str = ""
    floor_series: str = ""

    @property
    def ratio(self) -> float | None:
        """``ours / official``."""
        return ratio(self.ours, self.official)

    @property
    def ours_over_floor(self) -> float | None:
        return ratio(self.ours, self.floor)

    @property
    def official_over_floor(self) -> float | None:
        return ratio(self.official, self.floor)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "key": self.key,
            "metric": self.metric,
            "unit": self.unit,
            "official": self.official,
            "ours": self.ours,
            "ratio": self.ratio,
            "floor": self.floor,
            "ours_over_floor": self.ours_over_floor,
            "official_over_floor": self.official_over_floor,
            "higher_is_better": self.higher_is_better,
            "n": self.n,
            "note": self.note,
            "series": self.series,
            "floor_series": self.floor_series,
        }


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else value


class Workload(ABC):
    """A benchmark the runner drives: set up every participant, then run rounds of units.

    In each round the runner visits every unit (a concurrency level, a thread length, …)
    and, for each unit, every participant, rotating the order from one unit and round to
    the next, so that machine noise falls on all participants alike.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    participants: ClassVar[tuple[str, ...]] = IMPLEMENTATIONS

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.samples = Samples()

    def units(self) -> Sequence[str]:
        """The parts of one round, run back to back for every participant."""
        return ("",)

    def participants_for(self, unit: str) -> tuple[str, ...]:
        """Who takes part in `unit` (by default, every participant)."""
        return self.participants

    def rounds(self) -> int:
        return self.profile.rounds

    def steps(self) -> int:
        """Progress-bar steps: one per participant set up, one per (round, unit, participant)."""
        per_round = sum(len(self.participants_for(u)) for u in self.units())
        return len(self.participants) + self.rounds() * per_round

    @abstractmethod
    def setup(self, participant: str, dsn: str) -> None:
        """Prepare `participant` on its own fresh database `dsn`, warm-up included."""

    @abstractmethod
    def run(self, participant: str, unit: str, round_no: int) -> None:
        """Measure one unit of one round for `participant`, into `self.samples`."""

    def teardown(self, participant: str) -> None:  # noqa: B027 - an optional hook
        """Release what `setup` acquired (connections, pools, loops)."""

    def finish(self) -> None:  # noqa: B027 - an optional hook
        """Called once after every participant is torn down."""

    @abstractmethod
    def rows(self) -> list[Row]:
        """The results table's rows for this workload."""

    # -- helpers for rows ----------------------------------------------------------------------

    def latency_row(
        self,
        key: str,
        metric: str,
        series: str,
        *,
        q: str = "p50",
        floor_series: str | None = None,
        note: str = "",
    ) -> Row:
        """A row of latency percentile `q` (in ms) of `series`."""

        def pick(participant: str, name: str) -> float | None:
            summary = summarize(self.samples.latency_of(name, participant))
            return _clean(getattr(summary, q) * 1000)

        floor = pick(FLOOR, floor_series) if floor_series else None
        return Row(
            workload=self.name,
            key=key,
            metric=f"{metric} {q}",
            unit="ms",
            official=pick(OFFICIAL, series),
            ours=pick(OURS, series),
            floor=floor,
            n={p: len(self.samples.latency_of(series, p)) for p in IMPLEMENTATIONS},
            note=note,
            series=series,
            floor_series=floor_series or "",
        )

    def median_row(
        self,
        key: str,
        metric: str,
        series: str,
        unit: str,
        *,
        rates: bool = False,
        higher_is_better: bool = False,
        note: str = "",
    ) -> Row:
        """A row of the median of per-window rates (or of plain values) of `series`."""
        get = self.samples.rates_of if rates else self.samples.values_of

        def pick(participant: str) -> float | None:
            values = get(series, participant)
            return _clean(summarize(values).p50) if values else None

        return Row(
            workload=self.name,
            key=key,
            metric=metric,
            unit=unit,
            official=pick(OFFICIAL),
            ours=pick(OURS),
            higher_is_better=higher_is_better,
            n={p: len(get(series, p)) for p in IMPLEMENTATIONS},
            note=note,
            series=series,
        )


class AsyncLoop:
    """An event loop a workload keeps across rounds, so async pools live as long as it does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
