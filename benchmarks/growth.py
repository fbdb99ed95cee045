"""How the savers' hot path costs as the database grows: ``python -m benchmarks.growth``.

For each size (checkpoints in the database) a database of its own is loaded, then both
savers are timed on every size together, ours and the official one, each operation's calls
going round the sizes and the savers in turn. The tables are
the official ones for both packages (ours adds indexes the official code ignores), so both
run against the same rows.

Loading. One template thread of `TEMPLATE` checkpoints is written by our saver through its
public API (1 KB payload blob per checkpoint, one pending write each). SQL then replicates
its rows (`growth.sql`): checkpoint `k` of a loaded thread is template checkpoint
``k % TEMPLATE`` with its own checkpoint id (a UUID-shaped text that sorts by `k`), parent
id, step, channel versions and run id, in the JSONB as in the keys, and its own payload blob
and write: the rows a saver would have written, as `test_growth_smoke` checks by reading a
loaded thread back with both savers. Half the checkpoints are in long threads (10,000
each, or half the size when that is smaller), the rest in threads of 10.

Operations (``--samples`` each, p50 and p99 in ms): `put` of a new checkpoint (a new short
thread each time), `get_tuple` of the latest checkpoint of a short and of a long thread and
by id in a long thread, of the latest checkpoint of a short thread read just before (a thread
in use: its pages cached), `list(limit=10)` of a long thread, `list(filter={"run_id": ...},
limit=10)` across all threads. Then the tables' and indexes' bytes. ``--plot`` draws p50 and
p99 against size, log scales, ours beside official.

    python -m benchmarks.growth --dsn postgresql://postgres@127.0.0.1:5432/test \\
        --sizes 10000,100000,1000000 --json growth.json --plot growth.png

Databases are named ``growth_<size>`` and dropped after measuring unless ``--keep``;
``--reuse`` measures a database an earlier ``--keep`` run loaded instead of loading it again
(its load time is then not known) and keeps it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks.data import CheckpointStream
from checkpoint_pg._runtime.sqlfile import load

__all__ = [
    "TEMPLATE",
    "Layout",
    "create_database",
    "drop_database",
    "load_database",
    "load_threads",
    "main",
    "measure",
    "plot",
    "plot_operations",
    "summary",
    "table_bytes",
]

TEMPLATE = 20
LONG = 10_000
SHORT = 10
OFFICIAL, OURS = "official", "ours"
OPERATIONS = (
    "put",
    "get_tuple latest (short thread)",
    "get_tuple latest (long thread)",
    "get_tuple by id (long thread)",
    "get_tuple latest (short thread, read before)",
    "list limit=10 (long thread)",
    "list filter across threads",
)

_SQL = load("benchmarks", "growth.sql")


@dataclass(frozen=True)
class Layout:
    """How `size` checkpoints are spread over threads: half long, half short."""

    size: int

    @property
    def long_length(self) -> int:
        return max(SHORT, min(LONG, self.size // 2))

    @property
    def long_threads(self) -> int:
        return max(1, (self.size // 2) // self.long_length)

    @property
    def short_threads(self) -> int:
        return max(1, (self.size - self.long_threads * self.long_length) // SHORT)

    @property
    def checkpoints(self) -> int:
        return self.long_threads * self.long_length + self.short_threads * SHORT


def long_id(i: int) -> str:
    return f"long-{i}"


def short_id(i: int) -> str:
    return f"short-{i}"


def checkpoint_id(k: int) -> str:
    """The id of loaded checkpoint `k` (the SQL's `checkpoint_id_of`, for lookups by id)."""
    return f"1ef00000-0000-6000-8000-{k:012x}"


def _write_template(dsn: str) -> None:
    """The template thread, written by our saver (checkpoints, blobs, writes)."""
    from checkpoint_pg import PostgresSaver

    with PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
        stream = CheckpointStream("template", random.Random(21))
        for _ in range(TEMPLATE):
            args = stream.next()
            saved = saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
            saver.put_writes(saved, [("payload", {"note": "x" * 64})], str(uuid.uuid4()))


def create_database(dsn: str, name: str) -> str:
    """Create database `name` afresh (dropping any of that name); returns its DSN."""
    drop_database(dsn, name)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(dsn, dbname=name)


def drop_database(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


Thread = tuple[str, int, datetime | None, str | None]


def load_threads(dsn: str, name: str, threads: Iterable[Thread]) -> tuple[str, float]:
    """Create database `name` holding `threads`: (thread_id, checkpoints, born, metadata) each.

    `born` is the ``ts`` of the thread's first checkpoint (the next ones a second apart), or
    None for the template's; `metadata` (JSON text, or None) is added to each checkpoint's.
    Returns the database's DSN and the seconds loading took.
    """
    target = create_database(dsn, name)
    started = time.perf_counter()
    _write_template(target)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(_SQL.render("functions"))
        conn.execute(_SQL.render("template_table"))
        conn.execute(_SQL.render("threads_table"))
        copy_rows = "COPY growth_threads (thread_id, length, born, metadata) FROM STDIN"
        with conn.cursor().copy(copy_rows) as copy:
            for row in threads:
                copy.write_row(row)
        for statement in ("load_checkpoints", "load_blobs", "load_static_blobs", "load_writes"):
            conn.execute(_SQL.render(statement), {"template": TEMPLATE})
        conn.execute("VACUUM (ANALYZE) checkpoints, checkpoint_blobs, checkpoint_writes")
    return target, time.perf_counter() - started


def load_database(dsn: str, name: str, size: int) -> tuple[str, float]:
    """Create database `name` holding `size` checkpoints (as `Layout` spreads them).

    Returns its DSN and the seconds loading took.
    """
    layout = Layout(size)
    threads: list[Thread] = [
        (long_id(i), layout.long_length, None, None) for i in range(layout.long_threads)
    ]
    threads += [(short_id(i), SHORT, None, None) for i in range(layout.short_threads)]
    return load_threads(dsn, name, threads)


def table_bytes(dsn: str) -> dict[str, int]:
    """Heap+TOAST and index bytes of the three checkpoint tables."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(_SQL.render("table_bytes")).fetchone()
    assert row is not None
    return {"tables": int(row[0]), "indexes": int(row[1])}


@contextmanager
def _savers(dsn: str) -> Iterator[dict[str, Any]]:
    from langgraph.checkpoint.postgres import PostgresSaver as Official

    from checkpoint_pg import PostgresSaver

    with Official.from_conn_string(dsn) as official, PostgresSaver.from_conn_string(dsn) as ours:
        yield {OFFICIAL: official, OURS: ours}


class _ReadAgain:
    """`get_tuple` of the latest checkpoint of a thread read just before, untimed: a thread in
    use, as an agent's next step reads it, its pages in the server's or the OS's cache."""

    def __init__(self, pick: Callable[[], dict[str, Any]]) -> None:
        self._pick = pick
        self._config: dict[str, Any] = {}

    def prepare(self, saver: Any) -> None:
        self._config = self._pick()
        saver.get_tuple(self._config)

    def __call__(self, saver: Any) -> object:
        return saver.get_tuple(self._config)


def _operations(layout: Layout, rng: random.Random) -> dict[str, Callable[[Any], object]]:
    """Each operation as a call on a saver, its arguments drawn from `rng` at each call."""

    def put(saver: Any) -> object:
        args = CheckpointStream(f"new-{uuid.uuid4().hex}", rng).next()
        return saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)

    def config(thread: str, k: int | None = None) -> dict[str, Any]:
        conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ""}
        if k is not None:
            conf["checkpoint_id"] = checkpoint_id(k)
        return {"configurable": conf}

    def short() -> str:
        return short_id(rng.randrange(layout.short_threads))

    def long() -> str:
        return long_id(rng.randrange(layout.long_threads))

    return {
        "put": put,
        "get_tuple latest (short thread)": lambda s: s.get_tuple(config(short())),
        "get_tuple latest (long thread)": lambda s: s.get_tuple(config(long())),
        "get_tuple by id (long thread)": lambda s: s.get_tuple(
            config(long(), rng.randrange(layout.long_length))
        ),
        "get_tuple latest (short thread, read before)": _ReadAgain(lambda: config(short())),
        "list limit=10 (long thread)": lambda s: list(s.list(config(long()), limit=10)),
        "list filter across threads": lambda s: list(
            s.list(None, filter={"run_id": f"run-{short()}"}, limit=10)
        ),
    }


def measure(dsn: str, size: int, samples: int) -> dict[str, dict[str, dict[str, float]]]:
    """p50 and p99 (ms) of each operation, per participant, on the loaded database."""
    return measure_sizes({size: dsn}, samples)[size]


def measure_sizes(
    databases: dict[int, str], samples: int
) -> dict[int, dict[str, dict[str, dict[str, float]]]]:
    """`measure` on every loaded database (size -> DSN) at once: each operation's calls go
    round the sizes and the savers in turn, reversing the order every other round, so the
    box's load of the moment falls on every size alike (on a shared box a size measured
    minutes after another is a different machine)."""
    with ExitStack() as stack:
        savers = {size: stack.enter_context(_savers(dsn)) for size, dsn in databases.items()}
        operations = {size: _operations(Layout(size), random.Random(size)) for size in databases}
        out: dict[int, dict[str, dict[str, dict[str, float]]]] = {s: {} for s in databases}
        for op in OPERATIONS:
            times = {size: {p: list[float]() for p in (OFFICIAL, OURS)} for size in databases}
            turns = [(size, p) for size in databases for p in (OFFICIAL, OURS)]
            for i in range(samples + 10):
                for size, p in turns if i % 2 == 0 else turns[::-1]:
                    call = operations[size][op]
                    if isinstance(call, _ReadAgain):
                        call.prepare(savers[size][p])
                    start = time.perf_counter()
                    call(savers[size][p])
                    if i >= 10:  # the first calls warm caches and prepare statements
                        times[size][p].append(time.perf_counter() - start)
            for size in databases:
                out[size][op] = {p: summary(t) for p, t in times[size].items()}
    return out


def plans(dsn: str, size: int) -> dict[str, list[str]]:
    """Our statements' plans on the loaded database (EXPLAIN, no ANALYZE): the scan nodes."""
    from checkpoint_pg import PostgresSaver

    layout = Layout(size)
    long = {"thread_id": long_id(layout.long_threads - 1), "checkpoint_ns": ""}
    with PostgresSaver.from_conn_string(dsn) as saver:
        saver._citus = False  # a single server: no catalog query before the page's statement
        queries = {
            "get_tuple latest (long thread)": saver._get_tuple_op({"configurable": long}),
            "get_tuple by id (long thread)": saver._get_tuple_op(
                {"configurable": {**long, "checkpoint_id": checkpoint_id(layout.long_length // 2)}}
            ),
            "list limit=10 (long thread)": saver._list_pager(
                {"configurable": long}, filter=None, before=None, limit=10
            ).next_operation(),
            "list filter across threads": saver._list_pager(
                None, filter={"run_id": f"run-{short_id(0)}"}, before=None, limit=10
            ).next_operation(),
        }
        out = {}
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name, op in queries.items():
                assert op is not None
                query = next(op.steps)
                assert not isinstance(query, list)
                rows = conn.execute(f"EXPLAIN (COSTS OFF) {query.sql}", query.params).fetchall()
                out[name] = [r[0].strip() for r in rows if "Scan" in r[0]]
    return out


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50": statistics.median(ordered) * 1e3,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
    }


def plot(results: dict[str, Any], path: Path) -> None:
    """p50 (solid) and p99 (dashed) against size per operation, log scales, both savers."""
    plot_operations(
        results,
        path,
        OPERATIONS,
        xlabel="checkpoints in the database",
        title="Saver operations as the database grows (p50 solid, p99 dashed)",
    )


def plot_operations(
    results: dict[str, Any], path: Path, operations: Iterable[str], *, xlabel: str, title: str
) -> None:
    """One panel per operation of `operations` that `results` holds: p50 (solid) and p99
    (dashed) against size, log scales, official beside ours (the growth benchmarks' plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in results["sizes"])
    ops = [op for op in operations if op in results["sizes"][str(sizes[0])]["operations"]]
    columns = 4 if len(ops) > 6 else 3
    rows = -(-len(ops) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(5 * columns, 4 * rows), constrained_layout=True, squeeze=False
    )
    colors = {OFFICIAL: "#d62728", OURS: "#1f77b4"}
    for ax in axes.flat[len(ops) :]:
        ax.set_visible(False)
    for ax, op in zip(axes.flat, ops, strict=False):
        for p, color in colors.items():
            for q, style in (("p50", "-"), ("p99", "--")):
                ys = [results["sizes"][str(s)]["operations"][op][p][q] for s in sizes]
                ax.plot(sizes, ys, style, marker="o", color=color, label=f"{p} {q}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ms per call")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def loaded_database(dsn: str, name: str) -> str | None:
    """The DSN of database `name` if an earlier `--keep` run loaded it completely, else None."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if not exists:
        return None
    target = make_conninfo(dsn, dbname=name)
    with psycopg.connect(target, autocommit=True) as conn:
        # The load ends with VACUUM ANALYZE: analyzed tables mean it finished.
        analyzed = conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'checkpoint_writes'"
            " AND last_analyze IS NOT NULL"
        ).fetchone()
    return target if analyzed and analyzed[0] else None


def run(
    dsn: str,
    sizes: list[int],
    samples: int,
    *,
    keep: bool = False,
    reuse: bool = False,
    prefix: str = "growth",
) -> dict[str, Any]:
    """Load a database per size (or reuse a kept one), measure them all together
    (`measure_sizes`), then drop them unless `keep`."""
    results: dict[str, Any] = {"samples": samples, "sizes": {}}
    databases: dict[int, str] = {}
    loads: dict[int, float | None] = {}
    try:
        for size in sizes:
            target = loaded_database(dsn, f"{prefix}_{size}") if reuse else None
            loads[size] = None
            if target is None:
                target, loads[size] = load_database(dsn, f"{prefix}_{size}", size)
            databases[size] = target
        measured = measure_sizes(databases, samples)
        for size, target in databases.items():
            layout = Layout(size)
            seconds = loads[size]
            entry = {
                "checkpoints": layout.checkpoints,
                "threads": layout.long_threads + layout.short_threads,
                "load_seconds": None if seconds is None else round(seconds, 1),
                "bytes": table_bytes(target),
                "operations": measured[size],
                "plans": plans(target, size),
            }
            results["sizes"][str(size)] = entry
            _print(size, entry)
    finally:
        if not keep:
            for size in sizes:
                drop_database(dsn, f"{prefix}_{size}")
    return results


def _print(size: int, entry: dict[str, Any]) -> None:
    print(
        f"\n{size:,} checkpoints ({entry['checkpoints']:,} loaded in {entry['threads']:,} "
        f"threads, {entry['load_seconds']} s); tables {entry['bytes']['tables'] / 2**20:,.1f} "
        f"MiB, indexes {entry['bytes']['indexes'] / 2**20:,.1f} MiB"
    )
    print("| operation | official p50 | ours p50 | ratio | official p99 | ours p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    for op, by in entry["operations"].items():
        o, u = by[OFFICIAL], by[OURS]
        print(
            f"| {op} | {o['p50']:.3f} | {u['p50']:.3f} | {u['p50'] / o['p50']:.2f} | "
            f"{o['p99']:.3f} | {u['p99']:.3f} |"
        )
    for op, nodes in entry["plans"].items():
        print(f"plan, ours, {op}: " + "; ".join(nodes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the loaded databases")
    parser.add_argument(
        "--reuse", action="store_true", help="measure a database an earlier --keep run loaded"
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    results = run(args.dsn, sizes, args.samples, keep=args.keep or args.reuse, reuse=args.reuse)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
