"""What `from_conn_string(dsn)` gives out of the box, ours against the official savers.

Two measurements, interleaved round by round (the order of the participants rotates), each
participant on a database of its own on the same server:

- latency on the default path: `put` of a 1 KB checkpoint and `get_tuple` of a thread's latest,
  one call at a time, through each package's own ``from_conn_string(dsn)``; the median of all
  calls of all rounds, in µs;
- throughput with 32 concurrent workers looping ``put`` → ``get_tuple`` on one saver: threads
  on the blocking saver, asyncio tasks on the async one; the median of the rounds' rates.

Participants: the official saver (``from_conn_string(dsn)``: one connection), ours by default
(``from_conn_string(dsn)``) and ours on a pool (``from_conn_string(dsn, pool_size=10)``).

    python -m benchmarks.conn_default --dsn postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.conn_default    # on a throwaway embedded PostgreSQL 18

Nothing here is asserted by a test; the figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks.data import CheckpointStream

OFFICIAL, OURS, POOL = "official", "ours", "ours, pool of 10"
PARTICIPANTS = (OFFICIAL, OURS, POOL)


def _opener(participant: str, dsn: str, *, asynchronous: bool) -> Any:
    """The participant's ``from_conn_string(dsn, ...)`` context manager."""
    if participant == OFFICIAL:
        if asynchronous:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as Official
        else:
            from langgraph.checkpoint.postgres import PostgresSaver as Official  # type: ignore[assignment]
        return Official.from_conn_string(dsn)
    from checkpoint_pg import AsyncPostgresSaver, PostgresSaver

    cls: Any = AsyncPostgresSaver if asynchronous else PostgresSaver
    return (
        cls.from_conn_string(dsn, pool_size=10)
        if participant == POOL
        else cls.from_conn_string(dsn)
    )


@contextmanager
def databases(dsn: str) -> Iterator[dict[str, str]]:
    """A fresh database per participant, its tables set up, dropped afterwards."""
    names = {p: f"bench_conn_{i}_{uuid.uuid4().hex[:8]}" for i, p in enumerate(PARTICIPANTS)}
    with psycopg.connect(dsn, autocommit=True) as admin:
        for name in names.values():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsns = {p: make_conninfo(dsn, dbname=name) for p, name in names.items()}
        for participant, target in dsns.items():
            with _opener(participant, target, asynchronous=False) as saver:
                saver.setup()
        yield dsns
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for name in names.values():
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _latency(saver: Any, calls: int, seed: str) -> tuple[list[float], list[float]]:
    stream = CheckpointStream(f"lat-{seed}", random.Random(seed))
    puts: list[float] = []
    for _ in range(calls):
        args = stream.next()
        start = time.perf_counter()
        saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
        puts.append(time.perf_counter() - start)
    latest = {"configurable": {"thread_id": stream.thread_id, "checkpoint_ns": ""}}
    gets: list[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        saver.get_tuple(latest)
        gets.append(time.perf_counter() - start)
    return puts, gets


def _sync_rate(saver: Any, workers: int, seconds: float, seed: str) -> float:
    done = [0] * workers
    stop = threading.Event()

    def work(i: int) -> None:
        stream = CheckpointStream(f"thr-{seed}-{i}", random.Random(f"{seed}-{i}"))
        latest = {"configurable": {"thread_id": stream.thread_id, "checkpoint_ns": ""}}
        while not stop.is_set():
            args = stream.next()
            saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
            saver.get_tuple(latest)
            done[i] += 2

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds / 4)  # everyone running
    before, start = sum(done), time.perf_counter()
    time.sleep(seconds)
    rate = (sum(done) - before) / (time.perf_counter() - start)
    stop.set()
    for t in threads:
        t.join()
    return rate


async def _async_rate(saver: Any, workers: int, seconds: float, seed: str) -> float:
    done = [0] * workers
    stop = asyncio.Event()

    async def work(i: int) -> None:
        stream = CheckpointStream(f"task-{seed}-{i}", random.Random(f"{seed}-{i}"))
        latest = {"configurable": {"thread_id": stream.thread_id, "checkpoint_ns": ""}}
        while not stop.is_set():
            args = stream.next()
            await saver.aput(args.config, args.checkpoint, args.metadata, args.new_versions)
            await saver.aget_tuple(latest)
            done[i] += 2

    tasks = [asyncio.create_task(work(i)) for i in range(workers)]
    await asyncio.sleep(seconds / 4)
    before, start = sum(done), time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (sum(done) - before) / (time.perf_counter() - start)
    stop.set()
    await asyncio.gather(*tasks)
    return rate


def _rotated(round_no: int) -> tuple[str, ...]:
    k = round_no % len(PARTICIPANTS)
    return PARTICIPANTS[k:] + PARTICIPANTS[:k]


def measure_latency(dsns: dict[str, str], rounds: int, calls: int) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {p: {"put": [], "get_tuple": []} for p in dsns}
    with _all_open(dsns, asynchronous=False) as savers:
        for p, saver in savers.items():
            _latency(saver, 50, f"warm-{p}")
        for r in range(rounds):
            for p in _rotated(r):
                puts, gets = _latency(savers[p], calls, f"{r}-{p}")
                samples[p]["put"] += puts
                samples[p]["get_tuple"] += gets
    return {
        p: {op: statistics.median(v) * 1e6 for op, v in ops.items()} for p, ops in samples.items()
    }


@contextmanager
def _all_open(dsns: dict[str, str], *, asynchronous: bool) -> Iterator[dict[str, Any]]:
    opened: list[AbstractContextManager[Any]] = []
    try:
        savers = {}
        for p, dsn in dsns.items():
            cm = _opener(p, dsn, asynchronous=asynchronous)
            savers[p] = cm.__enter__()
            opened.append(cm)
        yield savers
    finally:
        for cm in reversed(opened):
            cm.__exit__(None, None, None)


def measure_sync_rate(
    dsns: dict[str, str], rounds: int, seconds: float, workers: int
) -> dict[str, float]:
    rates: dict[str, list[float]] = {p: [] for p in dsns}
    with _all_open(dsns, asynchronous=False) as savers:
        for r in range(rounds):
            for p in _rotated(r):
                rates[p].append(_sync_rate(savers[p], workers, seconds, f"s{r}"))
    return {p: statistics.median(v) for p, v in rates.items()}


async def measure_async_rate(
    dsns: dict[str, str], rounds: int, seconds: float, workers: int
) -> dict[str, float]:
    rates: dict[str, list[float]] = {p: [] for p in dsns}
    opened: list[AbstractAsyncContextManager[Any]] = []
    savers: dict[str, Any] = {}
    try:
        for p, dsn in dsns.items():
            cm = _opener(p, dsn, asynchronous=True)
            savers[p] = await cm.__aenter__()
            opened.append(cm)
        for r in range(rounds):
            for p in _rotated(r):
                rates[p].append(await _async_rate(savers[p], workers, seconds, f"a{r}"))
    finally:
        for cm in reversed(opened):
            await cm.__aexit__(None, None, None)
    return {p: statistics.median(v) for p, v in rates.items()}


def _table(
    title: str, rows: dict[str, dict[str, float]], unit: str, fmt: Callable[[float], str]
) -> None:
    columns = list(next(iter(rows.values())))
    print(f"\n{title}")
    print("| participant | " + " | ".join(f"{c} ({unit})" for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for p, values in rows.items():
        print(f"| {p} | " + " | ".join(fmt(values[c]) for c in columns) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="default: a throwaway embedded PostgreSQL 18")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    if args.dsn:
        run(args)
        return
    from checkpoint_pg.cli.embedded import start_ephemeral

    server = start_ephemeral()
    try:
        args.dsn = server.dsn
        run(args)
    finally:
        server.stop()


def run(args: argparse.Namespace) -> None:
    with databases(args.dsn) as dsns:
        with _all_open({p: dsns[p] for p in (OURS,)}, asynchronous=False) as ours:
            print(f"ours: from_conn_string(dsn).conn is a {type(ours[OURS].conn).__name__}")
        latency = measure_latency(dsns, args.rounds, args.calls)
        sync = measure_sync_rate(dsns, args.rounds, args.seconds, args.workers)
        aio = asyncio.run(measure_async_rate(dsns, args.rounds, args.seconds, args.workers))
    _table("default path, p50", latency, "µs", lambda v: f"{v:,.0f}")
    rates = {
        p: {f"sync, {args.workers} threads": sync[p], f"async, {args.workers} tasks": aio[p]}
        for p in dsns
    }
    _table("throughput, put + get_tuple", rates, "ops/s", lambda v: f"{v:,.0f}")


if __name__ == "__main__":
    main()
