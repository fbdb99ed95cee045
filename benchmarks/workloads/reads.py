"""Reads on threads of three lengths: `get_tuple` (latest and by id) and `list(limit=10)`.

Both implementations get the very same checkpoints (same ids, same values), each written
with its own `put`, one pending write per checkpoint, beside many short background threads
(a production database holds many threads; with only the measured ones in the tables, the
planner's statistics, and so its plans, would be those of a toy database). Tables are
analyzed before timing, as autovacuum would have done. The floor reads the same bytes back
by primary key from a table of as many rows as the longest thread.
"""

from __future__ import annotations

import random
import time
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.rows import DictRow

from benchmarks.data import KB, CheckpointStream, PutArgs, payload, serialized, task_id
from benchmarks.participants import (
    FLOOR,
    IMPLEMENTATIONS,
    Floor,
    connect,
    setup_schema,
    sync_saver,
)
from benchmarks.workloads.base import Row, Workload

__all__ = ["ReadsWorkload"]

_LENGTHS = ("short", "medium", "long")
_OPS = ("latest", "by_id", "list10")
_OP_LABELS = {
    "latest": "get_tuple (latest)",
    "by_id": "get_tuple (by id)",
    "list10": "list(limit=10)",
}
_FLOOR_UNIT = "by_id@long"


class ReadsWorkload(Workload):
    name = "reads"
    title = "get_tuple and list on short and long threads"
    participants = (*IMPLEMENTATIONS, FLOOR)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sizes = dict(zip(_LENGTHS, self.profile.thread_sizes, strict=True))
        self.threads = {length: self._thread(length) for length in _LENGTHS}
        self.conns: dict[str, psycopg.Connection[DictRow]] = {}
        self.savers: dict[str, BaseCheckpointSaver[str]] = {}
        self.floor: Floor | None = None
        self.floor_keys: list[str] = []

    def _thread(self, length: str) -> list[tuple[PutArgs, str, Any]]:
        """The checkpoints of the `length` thread, each with a task id and a pending write."""
        rng = random.Random(f"reads-{length}")
        stream = CheckpointStream(f"reads-{length}", rng)
        return [(stream.next(), task_id(rng), payload(rng, KB)) for _ in range(self.sizes[length])]

    def _all_threads(self) -> list[list[tuple[PutArgs, str, Any]]]:
        """The measured threads, with the background threads spread among them."""
        threads = [*self.threads.values()]
        rng = random.Random("reads-background")
        for i in range(self.profile.background_threads):
            stream = CheckpointStream(f"background-{i}", rng)
            thread = [(stream.next(), task_id(rng), payload(rng, KB)) for _ in range(10)]
            threads.insert(rng.randrange(len(threads) + 1), thread)
        return threads

    def units(self) -> tuple[str, ...]:
        return tuple(f"{op}@{length}" for length in _LENGTHS for op in _OPS)

    def participants_for(self, unit: str) -> tuple[str, ...]:
        return (*IMPLEMENTATIONS, FLOOR) if unit == _FLOOR_UNIT else IMPLEMENTATIONS

    def setup(self, participant: str, dsn: str) -> None:
        conn = self.conns[participant] = connect(dsn)
        if participant == FLOOR:
            self.floor = Floor(conn)
            self.floor.setup()
            rng = random.Random("reads-floor")
            for i in range(self.sizes["long"]):
                key = f"floor-{i}"
                self.floor.insert(key, serialized(payload(rng, KB)))
                self.floor_keys.append(key)
            conn.execute(f"ANALYZE {Floor.TABLE}")
        else:
            setup_schema(participant, dsn)
            saver = self.savers[participant] = sync_saver(participant, conn)
            for checkpoints in self._all_threads():
                for args, task, value in checkpoints:
                    saved = saver.put(
                        args.config, args.checkpoint, args.metadata, args.new_versions
                    )
                    saver.put_writes(saved, [("payload", value)], task)
            conn.execute("ANALYZE")
            self._check(saver)
        for unit in self.units():
            if participant in self.participants_for(unit):
                self.run(participant, unit, -1, ops=self.profile.warmup_ops)

    def _check(self, saver: BaseCheckpointSaver[str]) -> None:
        """Refuse to time reads that return the wrong thing."""
        for length, checkpoints in self.threads.items():
            latest = saver.get_tuple(_config(length))
            if latest is None or latest.checkpoint["id"] != checkpoints[-1][0].checkpoint_id:
                raise RuntimeError(f"get_tuple on the {length} thread did not return its latest")
            if len(latest.pending_writes or []) != 1:
                raise RuntimeError(f"get_tuple on the {length} thread lost its pending write")
            page = list(saver.list(_config(length), limit=10))
            if len(page) != min(10, len(checkpoints)):
                raise RuntimeError(f"list(limit=10) on the {length} thread returned {len(page)}")

    def teardown(self, participant: str) -> None:
        if conn := self.conns.pop(participant, None):
            conn.close()

    def run(self, participant: str, unit: str, round_no: int, ops: int | None = None) -> None:
        count = self.profile.read_ops if ops is None else ops
        op, _, length = unit.partition("@")
        # Same random picks for every participant in a given round.
        rng = random.Random(f"{unit}-{round_no}")
        checkpoints = self.threads[length]
        seconds: list[float] = []
        if participant == FLOOR:
            assert self.floor is not None
            keys = [rng.choice(self.floor_keys) for _ in range(count)]
            for key in keys:
                start = time.perf_counter()
                self.floor.select(key)
                seconds.append(time.perf_counter() - start)
            if round_no >= 0:
                self.samples.latency("floor select 1 KB", participant, seconds)
            return
        saver = self.savers[participant]
        if op == "latest":
            configs = [_config(length)] * count
        else:
            configs = [
                _config(length, rng.choice(checkpoints)[0].checkpoint_id) for _ in range(count)
            ]
        for config in configs:
            start = time.perf_counter()
            if op == "list10":
                list(saver.list(config, limit=10))
            else:
                saver.get_tuple(config)
            seconds.append(time.perf_counter() - start)
        if round_no >= 0:
            self.samples.latency(unit, participant, seconds)

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for length in _LENGTHS:
            for op in _OPS:
                label = f"{_OP_LABELS[op]}, {self.sizes[length]:,}-checkpoint thread,"
                for q in ("p50", "p99"):
                    rows.append(
                        self.latency_row(
                            f"{op}.{length}.{q}",
                            label,
                            f"{op}@{length}",
                            q=q,
                            floor_series=None if op == "list10" else "floor select 1 KB",
                        )
                    )
        return rows


def _config(length: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": f"reads-{length}", "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}
