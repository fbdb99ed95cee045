"""Where the microseconds of one `put` go, ours against the official saver, on the default path.

Both savers come from ``from_conn_string(dsn)`` (one connection each), each on a database of
its own on the same server, set up by its own package. Calls alternate between the two (the
order flips every call), so load from other processes falls on both alike. For each call:

- wall time, and the client thread's CPU time (``time.thread_time``: serialization, parameter
  building, psycopg's adaptation, the shell; the rest of the wall time is the network, the
  server's work and the commit's WAL flush);
- every 20th call, the WAL bytes it wrote (``pg_current_wal_insert_lsn`` before and after).

Then as many `get_tuple` calls of the latest checkpoint of that thread (50 + `calls`
checkpoints long), alternating the same way: wall time.

Twice: with the server's ``synchronous_commit`` as it is, and with it off for the session (a
diagnostic, never a recommendation: it shows what the commit's flush costs).
Then our client side alone, step by step (``timeit``, best of 5 rounds).

    python -m benchmarks.put_breakdown --dsn postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.put_breakdown    # on a throwaway embedded PostgreSQL 18

Nothing here is asserted by a test; the figures go to benchmarks/RESULTS.md ("put: where the
microseconds go").
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import timeit
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks.data import CheckpointStream, PutArgs

OFFICIAL, OURS = "official", "ours"
WAL_EVERY = 20


def _saver_class(participant: str) -> Any:
    if participant == OFFICIAL:
        from langgraph.checkpoint.postgres import PostgresSaver as Official

        return Official
    from checkpoint_pg import PostgresSaver

    return PostgresSaver


@contextmanager
def _savers(dsn: str) -> Iterator[dict[str, Any]]:
    """Each participant's saver on a fresh database of its own, set up; dropped afterwards."""
    names = {p: f"bench_put_{p}_{uuid.uuid4().hex[:8]}" for p in (OFFICIAL, OURS)}
    with psycopg.connect(dsn, autocommit=True) as admin:
        for name in names.values():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with ExitStack() as stack:
            savers = {}
            for p, name in names.items():
                cm = _saver_class(p).from_conn_string(make_conninfo(dsn, dbname=name))
                savers[p] = stack.enter_context(cm)
                savers[p].setup()
            yield savers
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for name in names.values():
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _put(saver: Any, args: PutArgs) -> None:
    saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)


def measure(savers: dict[str, Any], calls: int, probe: psycopg.Connection[Any]) -> dict[str, Any]:
    """Per participant: medians of wall, client CPU and wall - CPU (µs), WAL bytes per put."""
    streams = {p: CheckpointStream(f"put-{uuid.uuid4().hex}", random.Random(7)) for p in savers}
    for p, saver in savers.items():  # warm: statements prepared, caches filled
        for _ in range(50):
            _put(saver, streams[p].next())
    wall: dict[str, list[float]] = {p: [] for p in savers}
    cpu: dict[str, list[float]] = {p: [] for p in savers}
    wal: dict[str, list[float]] = {p: [] for p in savers}
    order = list(savers)
    for i in range(calls):
        for p in order if i % 2 == 0 else order[::-1]:
            args = streams[p].next()
            lsn = None
            if i % WAL_EVERY == 0:
                lsn = probe.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
            w0, c0 = time.perf_counter(), time.thread_time()
            _put(savers[p], args)
            cpu[p].append(time.thread_time() - c0)
            wall[p].append(time.perf_counter() - w0)
            if lsn is not None:
                row = probe.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn,)
                ).fetchone()
                wal[p].append(float(row[0]))  # type: ignore[index]
    gets: dict[str, list[float]] = {p: [] for p in savers}
    for i in range(calls):
        for p in order if i % 2 == 0 else order[::-1]:
            latest = {"configurable": {"thread_id": streams[p].thread_id, "checkpoint_ns": ""}}
            w0 = time.perf_counter()
            savers[p].get_tuple(latest)
            gets[p].append(time.perf_counter() - w0)
    return {
        p: {
            "get_tuple wall": statistics.median(gets[p]) * 1e6,
            "wall": statistics.median(wall[p]) * 1e6,
            "client CPU": statistics.median(cpu[p]) * 1e6,
            "wall - CPU": statistics.median(w - c for w, c in zip(wall[p], cpu[p], strict=True))
            * 1e6,
            "p99 wall": sorted(wall[p])[int(len(wall[p]) * 0.99)] * 1e6,
            "WAL bytes": statistics.median(wal[p]),
        }
        for p in savers
    }


def client_steps() -> dict[str, float]:
    """Our client side of one 1 KB put, step by step, in µs (no server involved)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from checkpoint_pg import _core, _rows
    from checkpoint_pg._runtime.jsonb import jsonb_text
    from checkpoint_pg._sql import BLOB_ARRAYS, put_statement, spread

    stream = CheckpointStream("steps", random.Random(7))
    stream.next()
    args = stream.next()
    serde = JsonPlusSerializer()
    params, _ = _rows.put_params(
        serde, args.config, args.checkpoint, args.metadata, args.new_versions
    )
    stored = {
        **args.checkpoint,
        "channel_values": {"step": args.checkpoint["channel_values"]["step"]},
    }
    value = args.checkpoint["channel_values"]["payload"]
    steps: dict[str, Callable[[], object]] = {
        "put_params (all below but the key check)": lambda: _rows.put_params(
            serde, args.config, args.checkpoint, args.metadata, args.new_versions
        ),
        "  checkpoint JSON, orjson": lambda: jsonb_text(stored, "c", ValueError, fast=True),
        "  checkpoint JSON, json (before)": lambda: jsonb_text(stored, "c", ValueError),
        "  1 KB value through the serializer": lambda: serde.dumps_typed(value),
        "  config validation (thread_ref)": lambda: _rows.thread_ref(args.config),
        "key size check": lambda: _core._check_put_keys(params),
        "statement and parameters": lambda: (
            spread(params, BLOB_ARRAYS) and put_statement(None, len(params["channels"]))
        ),
    }
    number = 5000
    return {
        name: min(timeit.repeat(step, number=number, repeat=5)) / number * 1e6
        for name, step in steps.items()
    }


def _table(title: str, rows: dict[str, dict[str, float]]) -> None:
    columns = list(next(iter(rows.values())))
    print(f"\n{title}")
    print("| participant | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for p, values in rows.items():
        print(f"| {p} | " + " | ".join(f"{values[c]:,.0f}" for c in columns) + " |")
    ours, official = rows[OURS], rows[OFFICIAL]
    print(f"put wall p50 ratio ours/official: {ours['wall'] / official['wall']:.2f}")
    ratio = ours["get_tuple wall"] / official["get_tuple wall"]
    print(f"get_tuple wall p50 ratio ours/official: {ratio:.2f}")


def run(dsn: str, calls: int) -> None:
    with _savers(dsn) as savers, psycopg.connect(dsn, autocommit=True) as probe:
        _table("synchronous_commit as configured (µs; WAL in bytes)", measure(savers, calls, probe))
        for saver in savers.values():
            saver.conn.execute("SET synchronous_commit = off")
        _table("synchronous_commit off (µs; WAL in bytes)", measure(savers, calls, probe))
    print("\nours, client side alone (µs)")
    for name, micros in client_steps().items():
        print(f"| {name} | {micros:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="default: a throwaway embedded PostgreSQL 18")
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    if args.dsn:
        run(args.dsn, args.calls)
        return
    from checkpoint_pg.cli.embedded import start_ephemeral

    server = start_ephemeral()
    try:
        run(server.dsn, args.calls)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
