"""Thread operations as the database grows: ``python -m benchmarks.growth_ops``.

For each size (threads in the database) a database of its own is loaded with
`benchmarks.growth.load_threads`: every thread has `LENGTH` checkpoints (the template
thread's first ones, with their blobs and writes: the rows the savers write), and its
checkpoints' ``ts`` spread over a year. Ages are scattered over the thread ids (thread `i` has
age rank ``i * STRIDE mod threads``), as idle threads are among real ones.

Every size is loaded first; then they are measured side by side, each step alternating
between sizes (list_threads call by call, the deletion rounds size by size, the order reversed
every other round), so that the load of a shared machine moves every size alike. Measured:

- `list_threads` (ours; the official package has none): p50/p99 of the first page, of a deep
  page (``after=`` a random thread id), with ``idle_for`` (half the threads match), with a
  metadata filter that one thread matches and one that every thread matches.
- Deleting, on equal slices of threads (`--slice` of them each, the oldest first), `ROUNDS`
  rounds, the order of the participants reversed every other round: our
  ``apply_retention(idle_for)`` (a sweep over every thread, cutting exactly the slice), and
  as its baseline the official ``delete_thread`` per thread (what a user of that package
  writes, given the ids); both savers' ``delete_thread`` per thread,
  ``prune(strategy="delete")`` and ``prune(strategy="keep_latest")`` 100 threads a call.
  Rows deleted per second (checkpoints, blobs, writes: counted on the slice before and after).
- Meanwhile, on each database, another thread `put`s a checkpoint (ours, a new thread each)
  every `PUT_INTERVAL` seconds: its p50/p99 during each operation, and in a quiet phase.
- After the deletions: ``n_live_tup``/``n_dead_tup``, autovacuum counts and the dead tuples
  that would start autovacuum (the server's settings) of the three tables, table and index
  bytes before and after, and the time a manual ``VACUUM`` takes (autovacuum's work).
- EXPLAIN (ANALYZE, BUFFERS) of our statements: the list_threads pages, the retention pick
  and delete, delete_thread and prune's first step (deleting statements rolled back).

    python -m benchmarks.growth_ops --dsn postgresql://postgres@127.0.0.1:5432/test \\
        --threads 100000,1000000 --json ops.json --plot ops.png

Databases are named ``gops_<threads>`` and dropped after measuring unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import growth
from benchmarks.data import CheckpointStream
from checkpoint_pg._runtime.protocol import Query

__all__ = [
    "DELETE_OPERATIONS",
    "LENGTH",
    "LIST_OPERATIONS",
    "ROUNDS",
    "Ages",
    "load",
    "main",
    "plot",
    "run",
    "thread_id",
]

LENGTH = 3
YEAR = timedelta(days=365)
STRIDE = 7919  # a prime: i -> i * STRIDE mod n is a permutation when n is not its multiple
PUT_INTERVAL = 0.05
CHUNK = 100
OFFICIAL, OURS = "official", "ours"
TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
LIST_OPERATIONS = (
    "first page",
    "deep page",
    "idle_for (half match)",
    "filter, one thread matches",
    "filter, 1% of threads match",
    "filter, 10% of threads match",
    "filter, every thread matches",
)
# (operation, participant) pairs, each deleting one slice per round.
DELETE_OPERATIONS = (
    ("apply_retention idle_for", OURS),
    ("apply_retention idle_for", OFFICIAL),
    ("delete_thread each", OURS),
    ("delete_thread each", OFFICIAL),
    ("prune delete", OURS),
    ("prune delete", OFFICIAL),
    ("prune keep_latest", OURS),
    ("prune keep_latest", OFFICIAL),
)
ROUNDS = 3


def thread_id(i: int) -> str:
    return f"t-{i:08d}"


@dataclass(frozen=True)
class Ages:
    """Each thread's age rank (0 the youngest) and the time of its first checkpoint."""

    threads: int
    loaded_at: float  # epoch seconds the ages count back from

    def __post_init__(self) -> None:
        if math.gcd(STRIDE, self.threads) != 1:
            raise ValueError(f"--threads must not be a multiple of {STRIDE}")

    def rank(self, i: int) -> int:
        return (i * STRIDE) % self.threads

    def age(self, rank: float) -> float:
        """Seconds from the first checkpoint of the thread of `rank` to `loaded_at`."""
        return 3600 + YEAR.total_seconds() * rank / self.threads

    def born(self, i: int) -> datetime:
        return datetime.fromtimestamp(self.loaded_at - self.age(self.rank(i)), tz=timezone.utc)

    def slice(self, j: int, size: int) -> list[str]:
        """Slice `j` (0 the oldest) of `size` threads by age: its thread ids."""
        top = self.threads - j * size
        inverse = pow(STRIDE, -1, self.threads)
        return sorted(thread_id((r * inverse) % self.threads) for r in range(top - size, top))

    def idle_for(self, slices: int, size: int) -> timedelta:
        """An ``idle_for`` that makes exactly the oldest `slices` slices idle now."""
        boundary = self.threads - slices * size - 0.5
        since_load = time.time() - self.loaded_at
        return timedelta(seconds=self.age(boundary) + since_load - (LENGTH - 1))


def tier(i: int) -> str | None:
    """Metadata some threads carry, for filters that a share of the threads match:
    ``{"tier": "gold"}`` 1% of them, ``{"tier": "silver"}`` 10%."""
    if i % 100 == 0:
        return '{"tier": "gold"}'
    if i % 10 == 1:
        return '{"tier": "silver"}'
    return None


def load(dsn: str, name: str, threads: int) -> tuple[str, Ages, float]:
    """Load database `name` with `threads` threads of `LENGTH` checkpoints."""
    ages = Ages(threads, time.time())
    rows = ((thread_id(i), LENGTH, ages.born(i), tier(i)) for i in range(threads))
    target, seconds = growth.load_threads(dsn, name, rows)
    with psycopg.connect(target, autocommit=True) as conn:
        # Write the load's dirty pages now, not in the middle of the first measurement.
        conn.execute("CHECKPOINT")
    return target, ages, seconds


@contextmanager
def _savers(dsn: str) -> Iterator[dict[str, Any]]:
    from langgraph.checkpoint.postgres import PostgresSaver as Official

    from checkpoint_pg import PostgresSaver

    with Official.from_conn_string(dsn) as official, PostgresSaver.from_conn_string(dsn) as ours:
        yield {OFFICIAL: official, OURS: ours}


def _timed(samples: int, call: Callable[[], object]) -> dict[str, float]:
    for _ in range(3):  # warm caches and prepared statements
        call()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return growth.summary(times)


def _pages(ages: Ages) -> dict[str, Callable[[Any], object]]:
    """Each list_threads page as a call on our saver, its cursor drawn at each call."""
    rng = random.Random(ages.threads)
    n = ages.threads
    half = timedelta(seconds=ages.age(n / 2) + time.time() - ages.loaded_at)
    return {
        "first page": lambda s: s.list_threads(limit=100),
        "deep page": lambda s: s.list_threads(limit=100, after=thread_id(rng.randrange(n))),
        "idle_for (half match)": lambda s: s.list_threads(limit=100, idle_for=half),
        "filter, one thread matches": lambda s: s.list_threads(
            limit=100, filter={"run_id": f"run-{thread_id(rng.randrange(n))}"}
        ),
        "filter, 1% of threads match": lambda s: s.list_threads(limit=100, filter={"tier": "gold"}),
        "filter, 10% of threads match": lambda s: s.list_threads(
            limit=100, filter={"tier": "silver"}
        ),
        "filter, every thread matches": lambda s: s.list_threads(
            limit=100, filter={"source": "loop"}
        ),
    }


def measure_lists(
    loaded: dict[int, tuple[str, Ages]], samples: int
) -> dict[int, dict[str, dict[str, float]]]:
    """p50/p99 (ms) of each list_threads page (ours), per size, sizes alternating call by
    call (the first 3 calls of each warm caches and prepared statements)."""
    from checkpoint_pg import PostgresSaver

    sizes = list(loaded)
    out: dict[int, dict[str, dict[str, float]]] = {n: {} for n in sizes}
    with ExitStack() as stack:
        savers = {
            n: stack.enter_context(PostgresSaver.from_conn_string(loaded[n][0])) for n in sizes
        }
        pages = {n: _pages(loaded[n][1]) for n in sizes}
        for name in LIST_OPERATIONS:
            times: dict[int, list[float]] = {n: [] for n in sizes}
            for i in range(samples + 3):
                for n in sizes if i % 2 == 0 else sizes[::-1]:
                    start = time.perf_counter()
                    pages[n][name](savers[n])
                    if i >= 3:
                        times[n].append(time.perf_counter() - start)
            for n in sizes:
                out[n][name] = growth.summary(times[n])
    return out


@dataclass
class PutProbe:
    """A thread putting a checkpoint (ours, a new thread each) every `PUT_INTERVAL` s."""

    dsn: str
    times: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PutProbe:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _loop(self) -> None:
        from checkpoint_pg import PostgresSaver

        rng = random.Random(7)
        with PostgresSaver.from_conn_string(self.dsn) as saver:
            next_at = time.perf_counter()
            while not self._stop.is_set():
                args = CheckpointStream(f"live-{uuid.uuid4().hex}", rng).next()
                start = time.perf_counter()
                saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
                self.times.append((start, time.perf_counter() - start))
                next_at += PUT_INTERVAL
                self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def between(self, start: float, end: float) -> list[float]:
        return [s for t, s in list(self.times) if start <= t < end]


def _slice_rows(conn: psycopg.Connection[Any], ids: Sequence[str]) -> dict[str, int]:
    out = {}
    for table in TABLES:
        query = f"SELECT count(*) FROM {table} WHERE thread_id = ANY(%s)"
        row = conn.execute(query, (list(ids),)).fetchone()
        out[table] = int(row[0]) if row else 0
    return out


def _delete(
    op: str, who: str, saver: Any, ids: list[str], ages: Ages, slices: int, size: int
) -> object:
    from checkpoint_pg import RetentionPolicy

    if op == "apply_retention idle_for":
        if who == OURS:
            policy = RetentionPolicy(idle_for=ages.idle_for(slices, size))
            return saver.apply_retention(policy).to_dict()
        op = "delete_thread each"  # the official baseline: what a user writes, given the ids
    if op == "delete_thread each":
        for t in ids:
            saver.delete_thread(t)
        return None
    strategy = op.removeprefix("prune ")
    for k in range(0, len(ids), CHUNK):
        saver.prune(ids[k : k + CHUNK], strategy=strategy)
    return None


class DeleteBench:
    """The deleting operations on one loaded database, a round at a time, with a `PutProbe`
    on it throughout: rows deleted per second and put latency during each."""

    def __init__(self, dsn: str, ages: Ages, size: int) -> None:
        self.dsn, self.ages, self.size = dsn, ages, size
        # apply_retention cuts the oldest threads, so its slices are the oldest: its round r
        # deletes slice r (cutting slices 0..r); the other operations' slices follow.
        self.slices: dict[tuple[str, str, int], int] = {}
        retention = ("apply_retention idle_for", OURS)
        for r in range(ROUNDS):
            self.slices[(retention[0], retention[1], r)] = r
        j = ROUNDS
        for key in DELETE_OPERATIONS:
            if key == retention:
                continue
            for r in range(ROUNDS):
                self.slices[(key[0], key[1], r)] = j
                j += 1
        if (j + 1) * size > ages.threads:
            raise ValueError(f"{j + 1} slices of {size} threads are more than {ages.threads}")
        self.deleted: dict[str, Any] = {}
        self.phases: dict[str, list[tuple[float, float]]] = {}
        self._stack = ExitStack()

    def __enter__(self) -> DeleteBench:
        self.probe = self._stack.enter_context(PutProbe(self.dsn))
        self.savers = self._stack.enter_context(_savers(self.dsn))
        self.conn = self._stack.enter_context(psycopg.connect(self.dsn, autocommit=True))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def mark(self, phase: str, start: float, end: float) -> None:
        self.phases.setdefault(phase, []).append((start, end))

    def round(self, r: int) -> None:
        """Round `r`: each operation deletes its slice, in reverse order every other round."""
        ops = list(DELETE_OPERATIONS) if r % 2 == 0 else list(DELETE_OPERATIONS)[::-1]
        for op, who in ops:
            ids = self.ages.slice(self.slices[(op, who, r)], self.size)
            before = _slice_rows(self.conn, ids)
            start = time.perf_counter()
            report = _delete(op, who, self.savers[who], ids, self.ages, r + 1, self.size)
            seconds = time.perf_counter() - start
            after = _slice_rows(self.conn, ids)
            self.mark(f"{op} ({who})", start, time.perf_counter())
            entry = self.deleted.setdefault(f"{op} ({who})", {"runs": []})
            entry["runs"].append(
                {
                    "seconds": seconds,
                    "rows": {t: before[t] - after[t] for t in TABLES},
                    "left": sum(after.values()),
                    "report": report,
                }
            )

    def results(self) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
        for entry in self.deleted.values():
            total = sum(sum(run["rows"].values()) for run in entry["runs"])
            seconds = sum(run["seconds"] for run in entry["runs"])
            entry["rows_per_s"] = total / seconds
            entry["threads_per_s"] = self.size * len(entry["runs"]) / seconds
            reports = [run["report"] for run in entry["runs"] if run["report"]]
            if reports:  # a sweep examines every thread to find the idle ones
                examined = sum(r["threads_examined"] for r in reports)
                entry["examined_per_s"] = examined / sum(r["elapsed_s"] for r in reports)
        puts = {
            name: [s for a, b in spans for s in self.probe.between(a, b)]
            for name, spans in self.phases.items()
        }
        latency = {name: {**growth.summary(t), "n": len(t)} for name, t in puts.items() if t}
        return self.deleted, latency


def measure_deletes(
    loaded: dict[int, tuple[str, Ages, int]], quiet: float
) -> dict[int, tuple[dict[str, Any], dict[str, dict[str, float]]]]:
    """Every size's `DeleteBench`, round by round, sizes alternating (the order reversed
    every other round), after `quiet` seconds of puts alone."""
    sizes = list(loaded)
    with ExitStack() as stack:
        benches = {n: stack.enter_context(DeleteBench(*loaded[n])) for n in sizes}
        time.sleep(min(1.0, quiet))  # the probes connect and warm up
        start = time.perf_counter()
        time.sleep(quiet)
        for bench in benches.values():
            bench.mark("quiet", start, time.perf_counter())
        for r in range(ROUNDS):
            for n in sizes if r % 2 == 0 else sizes[::-1]:
                benches[n].round(r)
        time.sleep(0.1)
        return {n: benches[n].results() for n in sizes}


def table_stats(dsn: str) -> dict[str, dict[str, Any]]:
    """pg_stat_user_tables of the three tables (flushed first), and their bytes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(0.2)  # the deleting connections, closed, flush their statistics on exit
        # autovacuum vacuums a table once its dead tuples pass this (the server's settings).
        rows = conn.execute(
            "SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.autovacuum_count,"
            " s.autoanalyze_count, pg_table_size(s.relid), pg_indexes_size(s.relid),"
            " current_setting('autovacuum_vacuum_threshold')::float8"
            "  + current_setting('autovacuum_vacuum_scale_factor')::float8"
            "  * greatest(c.reltuples, 0), current_setting('autovacuum')"
            " FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid"
            " WHERE s.relname = ANY(%s) ORDER BY s.relname",
            (list(TABLES),),
        ).fetchall()
    keys = (
        "live",
        "dead",
        "autovacuums",
        "autoanalyzes",
        "table_bytes",
        "index_bytes",
        "autovacuum_threshold",
        "autovacuum",
    )
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


def vacuum_seconds(dsn: str) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute("VACUUM checkpoints, checkpoint_blobs, checkpoint_writes")
        return time.perf_counter() - start


def _no_citus() -> Any:
    return False
    yield  # a generator that answers "not Citus" without a round trip


def _first_query(steps: Any) -> Query:
    query = next(steps)
    assert isinstance(query, Query)
    return query


def statements(ages: Ages, size: int) -> dict[str, Query]:
    """Our statements, as the savers send them, for EXPLAIN."""
    from checkpoint_pg import RetentionPolicy
    from checkpoint_pg._prune import keep_latest
    from checkpoint_pg._retention import RetentionRun, list_threads_op
    from checkpoint_pg._sql import retention_statements_for

    n = ages.threads
    deep = thread_id(n * 9 // 10)
    half = timedelta(seconds=ages.age(n / 2) + time.time() - ages.loaded_at)

    def page(**kw: Any) -> Query:
        kw = {"filter": None, "after": None, "idle_for": None, **kw}
        return _first_query(list_threads_op(None, limit=100, on_citus=_no_citus, **kw).steps)

    ids = ages.slice(ROUNDS * len(DELETE_OPERATIONS), size)[:CHUNK]
    idle = ages.idle_for(ROUNDS * len(DELETE_OPERATIONS) + 1, size)
    run = RetentionRun(None, RetentionPolicy(idle_for=idle))
    operation = run.next_operation()
    assert operation is not None
    return {
        "list_threads first page": page(),
        "list_threads deep page": page(after=deep),
        "list_threads idle_for": page(idle_for=half),
        "list_threads filter, one thread": page(filter={"run_id": f"run-{deep}"}),
        "list_threads filter, 1% of threads": page(filter={"tier": "gold"}),
        "list_threads filter, 10% of threads": page(filter={"tier": "silver"}),
        "list_threads filter, every thread": page(filter={"source": "loop"}),
        "retention pick (100 threads)": _first_query(operation.steps),
        "retention delete idle (100 threads)": Query(
            retention_statements_for(None).delete_idle, {"threads": ids, "idle_for": idle}
        ),
        "delete_thread": Query(
            "WITH gone_writes AS (DELETE FROM checkpoint_writes WHERE thread_id = %(thread_id)s),"
            " gone_blobs AS (DELETE FROM checkpoint_blobs WHERE thread_id = %(thread_id)s)"
            " DELETE FROM checkpoints WHERE thread_id = %(thread_id)s",
            {"thread_id": ids[0]},
        ),
        "prune keep_latest heads (100 threads)": _first_query(keep_latest(None, ids)),
    }


def explain(dsn: str, ages: Ages, size: int) -> dict[str, dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement (in a transaction rolled back)."""
    out = {}
    with psycopg.connect(dsn) as conn:
        for name, query in statements(ages, size).items():
            with conn.transaction(force_rollback=True):
                rows = conn.execute(
                    f"EXPLAIN (ANALYZE, BUFFERS) {query.sql}",
                    query.params,
                ).fetchall()
            lines = [r[0] for r in rows]
            timing = [ln for ln in lines if ln.startswith("Execution Time")]
            buffers = next((ln.strip() for ln in lines if "Buffers:" in ln), "")
            out[name] = {
                "ms": float(timing[0].split()[2]) if timing else math.nan,
                "buffers": buffers,
                "scans": [ln.strip() for ln in lines if "Scan" in ln],
                "plan": lines,
            }
    return out


def run(
    dsn: str,
    sizes: list[int],
    *,
    samples: int = 50,
    slice_fraction: float = 0.01,
    quiet: float = 10.0,
    keep: bool = False,
    prefix: str = "gops",
    json_path: Path | None = None,
    deletes: bool = True,
) -> dict[str, Any]:
    """Load every size, then measure them side by side (each step alternating sizes).

    Without `deletes`, only the list_threads pages and the plans are measured."""
    results: dict[str, Any] = {"samples": samples, "slice": slice_fraction, "sizes": {}}
    names = {n: f"{prefix}_{n}" for n in sizes}
    try:
        loaded: dict[int, tuple[str, Ages, int]] = {}
        entries: dict[int, dict[str, Any]] = {}
        for n in sizes:
            size = max(1, int(n * slice_fraction))
            target, ages, seconds = load(dsn, names[n], n)
            loaded[n] = (target, ages, size)
            entries[n] = {
                "threads": n,
                "checkpoints": n * LENGTH,
                "slice_threads": size,
                "load_seconds": round(seconds, 1),
            }
        for n, (target, _, _) in loaded.items():
            entries[n]["stats_loaded"] = table_stats(target)
        lists = measure_lists({n: (t, a) for n, (t, a, _) in loaded.items()}, samples)
        for n, (target, ages, size) in loaded.items():
            entries[n]["list_threads"] = lists[n]
            entries[n]["plans"] = explain(target, ages, size)
        if deletes:
            for n, (deleted, latency) in measure_deletes(loaded, quiet).items():
                entries[n]["deletes"], entries[n]["put_latency"] = deleted, latency
        for n, (target, _, _) in loaded.items():
            if deletes:
                entries[n]["stats_after_deletes"] = table_stats(target)
                entries[n]["vacuum_seconds"] = round(vacuum_seconds(target), 2)
                entries[n]["stats_after_vacuum"] = table_stats(target)
            results["sizes"][str(n)] = entries[n]
            _print(entries[n])
        if json_path is not None:
            json_path.write_text(json.dumps(results, indent=1, default=str))
    finally:
        if not keep:
            for name in names.values():
                growth.drop_database(dsn, name)
    return results


def _mib(stats: dict[str, dict[str, Any]], key: str) -> float:
    return sum(int(s[key]) for s in stats.values()) / 2**20


def _print(e: dict[str, Any]) -> None:
    loaded = e["stats_loaded"]
    print(
        f"\n{e['threads']:,} threads ({e['checkpoints']:,} checkpoints, loaded in "
        f"{e['load_seconds']} s); tables {_mib(loaded, 'table_bytes'):,.1f} MiB, indexes "
        f"{_mib(loaded, 'index_bytes'):,.1f} MiB; slices of {e['slice_threads']:,} threads"
    )
    print("| list_threads | p50 ms | p99 ms |\n|---|---:|---:|")
    for op, t in e["list_threads"].items():
        print(f"| {op} | {t['p50']:.2f} | {t['p99']:.2f} |")
    for name, p in e["plans"].items():
        print(f"plan {name}: {p['ms']:.2f} ms, {p['buffers']}")
    if "deletes" not in e:
        return
    after = e["stats_after_deletes"]
    print("| delete | rows/s | threads/s |\n|---|---:|---:|")
    for op, d in e["deletes"].items():
        examined = f" ({d['examined_per_s']:,.0f} examined/s)" if "examined_per_s" in d else ""
        print(f"| {op} | {d['rows_per_s']:,.0f} | {d['threads_per_s']:,.0f}{examined} |")
    print("| put during | p50 ms | p99 ms | n |\n|---|---:|---:|---:|")
    for op, t in e["put_latency"].items():
        print(f"| {op} | {t['p50']:.2f} | {t['p99']:.2f} | {t['n']} |")
    print(
        f"dead tuples after deletes {sum(int(s['dead']) for s in after.values()):,}, live "
        f"{sum(int(s['live']) for s in after.values()):,}; VACUUM {e['vacuum_seconds']} s"
    )


def plot(results: dict[str, Any], path: Path) -> None:
    """list_threads p50 against size, delete throughput, and put latency during deletes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in results["sizes"])
    by = [results["sizes"][str(s)] for s in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    ax = axes[0]
    for op in [o for o in LIST_OPERATIONS if all(o in e["list_threads"] for e in by)]:
        ax.plot(sizes, [e["list_threads"][op]["p50"] for e in by], marker="o", label=op)
    ax.set(xscale="log", yscale="log", xlabel="threads", ylabel="ms (p50)")
    ax.set_title("list_threads(limit=100), ours", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]
    names = list(by[0]["deletes"])
    width = 0.8 / len(sizes)
    for k, (s, e) in enumerate(zip(sizes, by, strict=True)):
        xs = [i + k * width for i in range(len(names))]
        ax.bar(xs, [e["deletes"][n]["rows_per_s"] for n in names], width, label=f"{s:,} threads")
    ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("rows deleted per second")
    ax.set_title("Deleting (checkpoints + blobs + writes)", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[2]
    phases = list(by[0]["put_latency"])
    for k, (s, e) in enumerate(zip(sizes, by, strict=True)):
        xs = [i + k * width for i in range(len(phases))]
        ys = [e["put_latency"].get(p, {}).get("p99", 0) for p in phases]
        ax.bar(xs, ys, width, label=f"{s:,} threads, p99")
    ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(phases))])
    ax.set_xticklabels(phases, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("ms")
    ax.set_title("Concurrent put p99 while deleting", fontsize=10)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--threads", default="100000,1000000")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--slice", type=float, default=0.01, help="fraction of threads a slice")
    parser.add_argument("--quiet", type=float, default=10.0, help="seconds of puts alone")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the loaded databases")
    parser.add_argument(
        "--lists-only", action="store_true", help="list_threads and plans, no deleting"
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.threads.split(",")]
    results = run(
        args.dsn,
        sizes,
        samples=args.samples,
        slice_fraction=args.slice,
        quiet=args.quiet,
        keep=args.keep,
        json_path=args.json,
        deletes=not args.lists_only,
    )
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
