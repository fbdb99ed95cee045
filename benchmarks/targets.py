"""The issue's performance targets, checked against one run's rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.stats import ratio
from benchmarks.workloads.base import Row

__all__ = ["TARGETS", "Target", "Verdict", "evaluate"]

Rows = dict[str, Row]


def _ours_over_official(key: str) -> Callable[[Rows], float | None]:
    return lambda rows: rows[key].ratio if key in rows else None


def _ours_over_floor(key: str) -> Callable[[Rows], float | None]:
    return lambda rows: rows[key].ours_over_floor if key in rows else None


def _ours_long_over_short(long: str, short: str) -> Callable[[Rows], float | None]:
    def measure(rows: Rows) -> float | None:
        if long not in rows or short not in rows:
            return None
        return ratio(rows[long].ours, rows[short].ours)

    return measure


@dataclass(frozen=True)
class Target:
    """A bound on one measured ratio."""

    name: str
    measure: Callable[[Rows], float | None]
    limit: float
    at_least: bool = False  # True: the ratio must be >= limit; False: <= limit
    reads: str = "ours/official"


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.target.at_least:
            return self.value >= self.target.limit
        return self.value <= self.target.limit

    @property
    def bound(self) -> str:
        return f"{'≥' if self.target.at_least else '≤'} {self.target.limit:g}"

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target.name,
            "reads": self.target.reads,
            "value": self.value,
            "bound": self.bound,
            "met": self.met,
        }


TARGETS: tuple[Target, ...] = (
    Target("saver concurrency, 32 async tasks, pool of 10: throughput",
           _ours_over_official("saver.async.32.ops"), 3.0, at_least=True),
    Target("saver concurrency, 32 sync threads, pool of 10: throughput",
           _ours_over_official("saver.sync.32.ops"), 3.0, at_least=True),
    Target("agent concurrency, 32 runs through the ~1 ms proxy: runs/s",
           _ours_over_official("agents.proxy.32.runs"), 2.0, at_least=True),
    Target("put 1 KB p50", _ours_over_official("put.1kb.p50"), 0.8),
    Target("put 64 KB p50", _ours_over_official("put.64kb.p50"), 0.8),
    Target("put_writes p50", _ours_over_official("put_writes.1kb.p50"), 0.8),
    Target("put 1 KB p50 vs floor (insert)", _ours_over_floor("put.1kb.p50"), 1.5,
           reads="ours/floor"),
    Target("put 64 KB p50 vs floor (insert)", _ours_over_floor("put.64kb.p50"), 1.5,
           reads="ours/floor"),
    Target("put_writes p50 vs floor (insert)", _ours_over_floor("put_writes.1kb.p50"), 1.5,
           reads="ours/floor"),
    Target("get_tuple latest p50, short thread", _ours_over_official("latest.short.p50"), 0.6),
    Target("get_tuple by id p50, short thread", _ours_over_official("by_id.short.p50"), 0.6),
    Target("get_tuple latest p50, long thread", _ours_over_official("latest.long.p50"), 0.6),
    Target("get_tuple by id p50, long thread", _ours_over_official("by_id.long.p50"), 0.6),
    Target("list(limit=10) p50, medium (500) thread",
           _ours_over_official("list10.medium.p50"), 0.5),
    Target("list(limit=10) p50, long thread vs short thread (ours)",
           _ours_long_over_short("list10.long.p50", "list10.short.p50"), 1.2,
           reads="ours long/ours short"),
    Target("bytes on disk per 25-step agent thread", _ours_over_official("agent.disk"), 0.7),
    Target("store: search with equality filters under a broad prefix p50 (≥ 10x faster)",
           _ours_over_official("store.search_eq.p50"), 0.1),
    Target("store: batch of 50 mixed ops p50", _ours_over_official("store.batch.p50"), 0.3),
    Target("store: batch of 50 mixed ops p50, through the ~1 ms proxy",
           _ours_over_official("store.batch.proxy.p50"), 0.3),
    Target("store: put p50 (no slower)", _ours_over_official("store.put.p50"), 1.0),
    Target("store: put p50 without the opt-in range index (no slower)",
           _ours_over_official("store.put_plain.p50"), 1.0),
    Target("store: get p50 (no slower)", _ours_over_official("store.get.p50"), 1.0),
    Target("store: vector search p50 (no slower)", _ours_over_official("store.vector.p50"), 1.0),
)  # fmt: skip


def evaluate(rows: Sequence[Row], targets: Sequence[Target] = TARGETS) -> list[Verdict]:
    """Each target's measured value (None when its rows were not measured) and verdict."""
    by_key = {row.key: row for row in rows}
    return [Verdict(t, t.measure(by_key)) for t in targets]
