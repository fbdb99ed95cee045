"""Thread operations as the database grows: ``python -m benchmarks.growth_ops``.

For each size (threads in the database) a database of its own is loaded with
`benchmarks.growth.load_threads`: every thread has `LENGTH` checkpoints (the template
thread's first ones, with their blobs and writes: the rows the savers write), and its
checkpoints' ``ts`` spread over a year. Ages are scattered over the thread ids (thread `i` has
age rank ``i * STRIDE mod threads``), as idle threads are among real ones.

Then, on the loaded database:

- `list_threads` (ours; the official package has none): p50/p99 of the first page, of a deep
  page (``after=`` a random thread id), with ``idle_for`` (half the threads match), with a
  metadata filter that one thread matches and one that every thread matches.
- Deleting, on equal slices of threads (`--slice` of them each, the oldest first), two rounds
  with the order of the participants reversed in the second: our ``apply_retention(idle_for)``
  (a sweep over every thread, cutting exactly the slice), and as its baseline the official
  ``delete_thread`` per thread (what a user of that package writes, given the ids); both
  savers' ``delete_thread`` per thread, ``prune(strategy="delete")`` and
  ``prune(strategy="keep_latest")`` 100 threads a call. Rows deleted per second
  (checkpoints, blobs, writes: counted on the slice before and after).
- Meanwhile another thread `put`s a checkpoint (ours, a new thread each) every
  `PUT_INTERVAL` seconds: its p50/p99 during each operation, and during a quiet phase.
- After the deletions: ``n_live_tup``/``n_dead_tup`` and autovacuum counts of the three
  tables, table and index bytes before and after, and the time a manual ``VACUUM`` takes
  (the work autovacuum has to do).
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
from contextlib import contextmanager
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


def load(dsn: str, name: str, threads: int) -> tuple[str, Ages, float]:
    """Load database `name` with `threads` threads of `LENGTH` checkpoints."""
    ages = Ages(threads, time.time())
    rows = ((thread_id(i), LENGTH, ages.born(i)) for i in range(threads))
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


def measure_lists(dsn: str, ages: Ages, samples: int) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of each list_threads page, ours."""
    from checkpoint_pg import PostgresSaver

    rng = random.Random(ages.threads)
    n = ages.threads
    half = timedelta(seconds=ages.age(n / 2) + time.time() - ages.loaded_at)
    pages: dict[str, Callable[[PostgresSaver], object]] = {
        "first page": lambda s: s.list_threads(limit=100),
        "deep page": lambda s: s.list_threads(limit=100, after=thread_id(rng.randrange(n))),
        "idle_for (half match)": lambda s: s.list_threads(limit=100, idle_for=half),
        "filter, one thread matches": lambda s: s.list_threads(
            limit=100, filter={"run_id": f"run-{thread_id(rng.randrange(n))}"}
        ),
        "filter, every thread matches": lambda s: s.list_threads(
            limit=100, filter={"source": "loop"}
        ),
    }
    out = {}
    with PostgresSaver.from_conn_string(dsn) as saver:
        for name, page in pages.items():
            # Every thread matching reads the whole table at the larger sizes: fewer samples.
            count = max(3, samples // 10) if "every" in name else samples
            out[name] = _timed(count, lambda page=page: page(saver))  # type: ignore[misc]
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


def measure_deletes(
    dsn: str, ages: Ages, size: int, quiet: float
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Rows deleted per second of each (operation, participant), and put latency meanwhile."""
    plan: list[tuple[str, str]] = []
    for r in range(ROUNDS):
        plan += list(DELETE_OPERATIONS) if r % 2 == 0 else list(DELETE_OPERATIONS)[::-1]
    # apply_retention cuts the oldest threads, so its slices are the oldest ones: slice j of
    # ours-retention's round r is r (its round r+1 cuts slices 0..r); the rest follow.
    slices: dict[tuple[str, str, int], int] = {}
    retention = ("apply_retention idle_for", OURS)
    for r in range(ROUNDS):
        slices[(retention[0], retention[1], r)] = r
    j = ROUNDS
    for key in DELETE_OPERATIONS:
        if key == retention:
            continue
        for r in range(ROUNDS):
            slices[(key[0], key[1], r)] = j
            j += 1
    if j * size > ages.threads:
        raise ValueError(f"{j} slices of {size} threads are more than {ages.threads} threads")
    deleted: dict[str, Any] = {}
    phases: dict[str, list[tuple[float, float]]] = {"quiet": []}
    rounds_done: dict[tuple[str, str], int] = {}
    with PutProbe(dsn) as probe, _savers(dsn) as savers, psycopg.connect(dsn) as conn:
        conn.autocommit = True
        time.sleep(min(1.0, quiet))  # the probe connects and warms up
        start = time.perf_counter()
        time.sleep(quiet)
        phases["quiet"].append((start, time.perf_counter()))
        for op, who in plan:
            r = rounds_done.get((op, who), 0)
            rounds_done[(op, who)] = r + 1
            j = slices[(op, who, r)]
            ids = ages.slice(j, size)
            before = _slice_rows(conn, ids)
            start = time.perf_counter()
            report = _delete(op, who, savers[who], ids, ages, r + 1, size)
            seconds = time.perf_counter() - start
            after = _slice_rows(conn, ids)
            phases.setdefault(f"{op} ({who})", []).append((start, time.perf_counter()))
            rows = {t: before[t] - after[t] for t in TABLES}
            entry = deleted.setdefault(f"{op} ({who})", {"runs": []})
            entry["runs"].append(
                {"seconds": seconds, "rows": rows, "left": sum(after.values()), "report": report}
            )
        time.sleep(0.1)
        puts = {
            name: [s for a, b in spans for s in probe.between(a, b)]
            for name, spans in phases.items()
        }
    for entry in deleted.values():
        total = sum(sum(run["rows"].values()) for run in entry["runs"])
        seconds = sum(run["seconds"] for run in entry["runs"])
        entry["rows_per_s"] = total / seconds
        entry["threads_per_s"] = size * len(entry["runs"]) / seconds
        reports = [run["report"] for run in entry["runs"] if run["report"]]
        if reports:  # a sweep examines every thread to find the idle ones
            examined = sum(r["threads_examined"] for r in reports)
            entry["examined_per_s"] = examined / sum(r["elapsed_s"] for r in reports)
    latency = {name: {**growth.summary(t), "n": len(t)} for name, t in puts.items() if t}
    return deleted, latency


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
) -> dict[str, Any]:
    results: dict[str, Any] = {"samples": samples, "slice": slice_fraction, "sizes": {}}
    for threads in sizes:
        name = f"{prefix}_{threads}"
        size = max(1, int(threads * slice_fraction))
        target, ages, seconds = load(dsn, name, threads)
        try:
            entry: dict[str, Any] = {
                "threads": threads,
                "checkpoints": threads * LENGTH,
                "slice_threads": size,
                "load_seconds": round(seconds, 1),
                "stats_loaded": table_stats(target),
                "list_threads": measure_lists(target, ages, samples),
                "plans": explain(target, ages, size),
            }
            entry["deletes"], entry["put_latency"] = measure_deletes(target, ages, size, quiet)
            entry["stats_after_deletes"] = table_stats(target)
            entry["vacuum_seconds"] = round(vacuum_seconds(target), 2)
            entry["stats_after_vacuum"] = table_stats(target)
        finally:
            if not keep:
                growth.drop_database(dsn, name)
        results["sizes"][str(threads)] = entry
        _print(entry)
        if json_path is not None:  # after each size: a long run keeps what it measured
            json_path.write_text(json.dumps(results, indent=1, default=str))
    return results


def _mib(stats: dict[str, dict[str, Any]], key: str) -> float:
    return sum(int(s[key]) for s in stats.values()) / 2**20


def _print(e: dict[str, Any]) -> None:
    loaded, after = e["stats_loaded"], e["stats_after_deletes"]
    print(
        f"\n{e['threads']:,} threads ({e['checkpoints']:,} checkpoints, loaded in "
        f"{e['load_seconds']} s); tables {_mib(loaded, 'table_bytes'):,.1f} MiB, indexes "
        f"{_mib(loaded, 'index_bytes'):,.1f} MiB; slices of {e['slice_threads']:,} threads"
    )
    print("| list_threads | p50 ms | p99 ms |\n|---|---:|---:|")
    for op, t in e["list_threads"].items():
        print(f"| {op} | {t['p50']:.2f} | {t['p99']:.2f} |")
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
    for name, p in e["plans"].items():
        print(f"plan {name}: {p['ms']:.2f} ms, {p['buffers']}")


def plot(results: dict[str, Any], path: Path) -> None:
    """list_threads p50 against size, delete throughput, and put latency during deletes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in results["sizes"])
    by = [results["sizes"][str(s)] for s in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    ax = axes[0]
    for op in LIST_OPERATIONS:
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
    )
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
