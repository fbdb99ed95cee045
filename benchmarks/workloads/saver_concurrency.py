"""Saver-level concurrency: N workers, each on its own thread, looping put → put_writes →
get_tuple through one saver on a pool of 10 connections, for a fixed time window.

Run with threads against the blocking saver on a `ConnectionPool` and with asyncio tasks
against the async saver on an `AsyncConnectionPool`. Throughput counts every call; latency
is per call, pool (or lock) waiting included.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from benchmarks.data import KB, CheckpointStream, payload, task_id
from benchmarks.participants import apool, make_async_saver, pool, setup_schema, sync_saver
from benchmarks.workloads.base import AsyncLoop, Row, Workload

__all__ = ["SaverConcurrencyWorkload"]

_MODES = ("sync", "async")
_VALUES = 32


class _Worker:
    """One worker's thread and data: the next put's arguments, its write, its reads."""

    def __init__(self, thread_id: str, seed: str) -> None:
        rng = random.Random(seed)
        values = tuple(payload(rng, KB) for _ in range(_VALUES))
        self.stream = CheckpointStream(thread_id, rng, values=values)
        self.rng = rng
        self.latest: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ""}
        }
        self.seconds: list[float] = []

    def step(self) -> tuple[Any, list[tuple[str, Any]], str]:
        args = self.stream.next()
        write = [("payload", self.stream.values[self.stream.step % _VALUES])]
        return args, write, task_id(self.rng)


class SaverConcurrencyWorkload(Workload):
    name = "saver_concurrency"
    title = "saver-level concurrency on a pool of 10"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = AsyncLoop()
        self.pools: dict[str, ConnectionPool[psycopg.Connection[DictRow]]] = {}
        self.apools: dict[str, AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]] = {}
        self.savers: dict[str, BaseCheckpointSaver[str]] = {}
        self.asavers: dict[str, BaseCheckpointSaver[str]] = {}

    def units(self) -> tuple[str, ...]:
        return tuple(f"{mode}@{n}" for n in self.profile.concurrency for mode in _MODES)

    def rounds(self) -> int:
        return self.profile.concurrency_rounds

    def setup(self, participant: str, dsn: str) -> None:
        setup_schema(participant, dsn)
        size = self.profile.pool_size
        self.pools[participant] = pool(dsn, size)
        self.savers[participant] = sync_saver(participant, self.pools[participant])
        self.apools[participant] = self.loop.run(apool(dsn, size))
        self.asavers[participant] = self.loop.run(
            make_async_saver(participant, self.apools[participant])
        )
        warmup = max(0.05, self.profile.concurrency_seconds / 4)
        for unit in self.units():
            self._measure(participant, unit, "warmup", warmup)

    def teardown(self, participant: str) -> None:
        if p := self.pools.pop(participant, None):
            p.close()
        if ap := self.apools.pop(participant, None):
            self.loop.run(ap.close())

    def finish(self) -> None:
        self.loop.close()

    def run(self, participant: str, unit: str, round_no: int) -> None:
        ops, seconds, elapsed = self._measure(
            participant, unit, f"r{round_no}", self.profile.concurrency_seconds
        )
        self.samples.rate(unit, participant, ops / elapsed)
        self.samples.latency(unit, participant, seconds)

    def _measure(
        self, participant: str, unit: str, label: str, window: float
    ) -> tuple[int, list[float], float]:
        mode, _, level = unit.partition("@")
        workers = [_Worker(f"{unit}-{label}-{i}", f"{unit}-{label}-{i}") for i in range(int(level))]
        if mode == "sync":
            elapsed = self._threads(self.savers[participant], workers, window)
        else:
            elapsed = self.loop.run(self._tasks(self.asavers[participant], workers, window))
        seconds = [s for w in workers for s in w.seconds]
        return len(seconds), seconds, elapsed

    @staticmethod
    def _threads(saver: BaseCheckpointSaver[str], workers: list[_Worker], window: float) -> float:
        barrier = threading.Barrier(len(workers) + 1)
        deadline = 0.0

        def work(worker: _Worker) -> None:
            barrier.wait()
            clock = time.perf_counter
            while clock() < deadline:
                args, write, task = worker.step()
                t0 = clock()
                config = saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
                t1 = clock()
                saver.put_writes(config, write, task)
                t2 = clock()
                saver.get_tuple(worker.latest)
                t3 = clock()
                worker.seconds += (t1 - t0, t2 - t1, t3 - t2)

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        start = time.perf_counter()
        deadline = start + window
        barrier.wait()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    @staticmethod
    async def _tasks(
        saver: BaseCheckpointSaver[str], workers: list[_Worker], window: float
    ) -> float:
        start = time.perf_counter()
        deadline = start + window

        async def work(worker: _Worker) -> None:
            clock = time.perf_counter
            while clock() < deadline:
                args, write, task = worker.step()
                t0 = clock()
                config = await saver.aput(
                    args.config, args.checkpoint, args.metadata, args.new_versions
                )
                t1 = clock()
                await saver.aput_writes(config, write, task)
                t2 = clock()
                await saver.aget_tuple(worker.latest)
                t3 = clock()
                worker.seconds += (t1 - t0, t2 - t1, t3 - t2)

        await asyncio.gather(*(work(w) for w in workers))
        return time.perf_counter() - start

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for mode in _MODES:
            for n in self.profile.concurrency:
                unit = f"{mode}@{n}"
                what = "threads" if mode == "sync" else "tasks"
                label = f"{mode}, {n} {what}"
                rows.append(
                    self.median_row(
                        f"saver.{mode}.{n}.ops",
                        f"{label}: operations/s",
                        unit,
                        "ops/s",
                        rates=True,
                        higher_is_better=True,
                    )
                )
                rows.append(self.latency_row(f"saver.{mode}.{n}.p50", f"{label}: op", unit))
                rows.append(
                    self.latency_row(f"saver.{mode}.{n}.p99", f"{label}: op", unit, q="p99")
                )
        return rows
