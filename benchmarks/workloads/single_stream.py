"""Single-stream writes: `put` (1 KB and 64 KB channel values) and `put_writes`, beside the floor.

One blocking saver on one connection, one call at a time; the floor inserts the same
serialized bytes as a single row with raw psycopg, on a database of its own.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.rows import DictRow

from benchmarks.data import KB, CheckpointStream, payload, serialized, task_id
from benchmarks.participants import (
    FLOOR,
    IMPLEMENTATIONS,
    Floor,
    connect,
    setup_schema,
    sync_saver,
)
from benchmarks.workloads.base import Row, Workload

__all__ = ["PutWorkload", "PutWritesWorkload"]

_SIZES = {"1 KB": KB, "64 KB": 64 * KB}


class _SingleStream(Workload):
    participants = (*IMPLEMENTATIONS, FLOOR)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conns: dict[str, psycopg.Connection[DictRow]] = {}
        self.savers: dict[str, BaseCheckpointSaver[str]] = {}
        self.floors: dict[str, Floor] = {}

    def setup(self, participant: str, dsn: str) -> None:
        conn = self.conns[participant] = connect(dsn)
        if participant == FLOOR:
            floor = self.floors[participant] = Floor(conn)
            floor.setup()
        else:
            setup_schema(participant, dsn)
            self.savers[participant] = sync_saver(participant, conn)
        for unit in self.units():
            self.run(participant, unit, -1, ops=self.profile.warmup_ops)

    def teardown(self, participant: str) -> None:
        if conn := self.conns.pop(participant, None):
            conn.close()

    def run(self, participant: str, unit: str, round_no: int, ops: int | None = None) -> None:
        count = self.profile.put_ops if ops is None else ops
        seconds = (
            self._floor(participant, unit, round_no, count)
            if participant == FLOOR
            else self._saver(participant, unit, round_no, count)
        )
        if round_no >= 0:
            self.samples.latency(f"{self.name} {unit}", participant, seconds)

    def _saver(self, participant: str, unit: str, round_no: int, count: int) -> list[float]:
        raise NotImplementedError

    def _values(self, unit: str, round_no: int, count: int) -> list[Any]:
        """The channel values the savers store in this unit and round, in order."""
        raise NotImplementedError

    def _floor(self, participant: str, unit: str, round_no: int, count: int) -> list[float]:
        """Insert the same bytes the savers store, one row per call."""
        floor = self.floors[participant]
        seconds: list[float] = []
        for value in self._values(unit, round_no, count):
            data = serialized(value)
            key = str(uuid.uuid4())
            start = time.perf_counter()
            floor.insert(key, data)
            seconds.append(time.perf_counter() - start)
        return seconds


class PutWorkload(_SingleStream):
    """`put` of a checkpoint whose one changed channel holds 1 KB or 64 KB."""

    name = "put"
    title = "single-stream put"

    def units(self) -> tuple[str, ...]:
        return tuple(_SIZES)

    def _stream(self, unit: str, round_no: int) -> CheckpointStream:
        # Same seed for every participant: the same values in the same order.
        return CheckpointStream(
            f"put-{unit}-{round_no}",
            random.Random(f"{self.name}-{unit}-{round_no}"),
            payload_size=_SIZES[unit],
        )

    def _values(self, unit: str, round_no: int, count: int) -> list[Any]:
        stream = self._stream(unit, round_no)
        return [stream.next().checkpoint["channel_values"]["payload"] for _ in range(count)]

    def _saver(self, participant: str, unit: str, round_no: int, count: int) -> list[float]:
        saver = self.savers[participant]
        stream = self._stream(unit, round_no)
        seconds: list[float] = []
        for _ in range(count):
            args = stream.next()
            start = time.perf_counter()
            saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
            seconds.append(time.perf_counter() - start)
        return seconds

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for unit in self.units():
            key = unit.replace(" ", "").lower()
            for q in ("p50", "p99"):
                rows.append(
                    self.latency_row(
                        f"put.{key}.{q}",
                        f"put, {unit} channel value,",
                        f"{self.name} {unit}",
                        q=q,
                        floor_series=f"{self.name} {unit}",
                    )
                )
        return rows


class PutWritesWorkload(_SingleStream):
    """`put_writes` of one task writing one 1 KB channel value."""

    name = "put_writes"
    title = "single-stream put_writes"

    def units(self) -> tuple[str, ...]:
        return ("1 KB",)

    def _values(self, unit: str, round_no: int, count: int) -> list[Any]:
        rng = random.Random(f"{self.name}-{unit}-{round_no}")
        return [payload(rng, KB) for _ in range(count)]

    def _saver(self, participant: str, unit: str, round_no: int, count: int) -> list[float]:
        saver = self.savers[participant]
        rng = random.Random(f"{self.name}-{unit}-{round_no}-tasks")
        stream = CheckpointStream(f"writes-{round_no}", random.Random(round_no))
        seconds: list[float] = []
        for value in self._values(unit, round_no, count):
            args = stream.next()
            config = saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
            writes = [("payload", value)]
            task = task_id(rng)
            start = time.perf_counter()
            saver.put_writes(config, writes, task)
            seconds.append(time.perf_counter() - start)
        return seconds

    def run(self, participant: str, unit: str, round_no: int, ops: int | None = None) -> None:
        count = self.profile.put_writes_ops if ops is None else ops
        super().run(participant, unit, round_no, ops=count)

    def rows(self) -> list[Row]:
        return [
            self.latency_row(
                f"put_writes.1kb.{q}",
                "put_writes, one 1 KB write,",
                f"{self.name} 1 KB",
                q=q,
                floor_series=f"{self.name} 1 KB",
            )
            for q in ("p50", "p99")
        ]
