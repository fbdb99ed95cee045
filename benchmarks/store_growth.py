"""How the store's hot path costs as it grows: ``python -m benchmarks.store_growth``.

For each size (items in the store) a database of its own is loaded, then both stores are
timed on it, ours and the official one, alternating call by call on the same rows (the
tables are the official ones; ours adds indexes the official code ignores).

Loading is search_bench's (`search_bench.load`): the items of the store search benchmark
(namespaces of 100 under ``("users", "u<n>", "memories")``, ``status`` of 4 values, ``topic``
one per 100 items, a numeric ``score`` of 0-999, 240 characters of prose as ``text``),
COPYed as the rows the store writes, after our store's own `setup()` with
``range_index_fields=["score"]`` and, on a server with pgvector, ``index=`` of `dims`
dimensions (`HashedEmbeddings`, cosine HNSW); the secondary indexes are re-created after the
load, then ``VACUUM ANALYZE``. `tests/benchmarks/test_store_growth_smoke.py` reads loaded
items back with both stores.

Operations (``--samples`` each, p50 and p99 in ms, and the mean number of items returned):
a `put` of a new item without and with embedding, a `get` of an existing item, `search`
under ``("users",)`` with two equality filters (``status`` and ``topic``: ~25 items match at
any size) and with a numeric range filter (``score`` in a window of 50: ~5 % of the items),
the same two kinds in one user's namespace (100 items), and a vector search (``query=``)
under ``("users",)`` without a filter and with the ``topic`` filter (~100 items at any
size). The official store compares numbers as text, so a range filter matches other items
there: ``range_matched`` counts the items each store's rule matches, by SQL. Then the tables'
and indexes' bytes, and EXPLAIN (ANALYZE, BUFFERS) of our statements for each operation (the
statements our store sent, run again in a transaction rolled back). ``--plot`` draws p50 and
p99 against size, log scales, ours beside official.

    python -m benchmarks.store_growth --dsn postgresql://postgres@127.0.0.1:5432/test \\
        --sizes 10000,100000,1000000 --json results-store-growth.json --plot growth.png

Without ``--dsn``: an embedded PostgreSQL 18 with pgvector, deleted afterwards. Databases are
named ``<prefix>_<size>`` (``--prefix``, default ``store_growth``) and dropped after measuring
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from benchmarks import growth, prose, search_bench

__all__ = ["OPERATIONS", "VECTOR_OPERATIONS", "load_database", "main", "measure", "plot", "run"]

OFFICIAL, OURS = growth.OFFICIAL, growth.OURS
PUT = "put, new item"
PUT_EMBEDDED = "put, new item, embedded"
GET = "get, existing item"
SEARCH_EQ = "search ('users',), 2 equality filters (~25 match)"
SEARCH_RANGE = "search ('users',), numeric range filter (~5%)"
USER_EQ = "search one user's namespace, 1 equality filter"
USER_RANGE = "search one user's namespace, numeric range filter"
VECTOR = "vector search ('users',)"
VECTOR_FILTERED = "vector search ('users',), filter topic (~100 match)"
OPERATIONS = (PUT, GET, SEARCH_EQ, SEARCH_RANGE, USER_EQ, USER_RANGE)
VECTOR_OPERATIONS = (PUT_EMBEDDED, VECTOR, VECTOR_FILTERED)
LIMIT = 10
WINDOW = 50  # a range filter asks for scores in [low, low + WINDOW)
RANGE_FIELDS = ["score"]


def index_config(dims: int) -> dict[str, Any]:
    """search_bench's ``index=`` without its full-text part: `query=` is a vector search
    in both stores (ours would rank hybrid with a text index), and puts compute no tsvector."""
    return {k: v for k, v in search_bench.index_config(dims).items() if k != "text"}


def _has_pgvector(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        return found.fetchone() is not None


def _drop(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def load_database(
    dsn: str, name: str, size: int, *, vectors: bool, dims: int = search_bench.DIMS
) -> tuple[str, dict[str, float]]:
    """Create database `name` holding `size` items set up by our store (`vectors`: with
    embeddings of `dims` dimensions). Returns its DSN and the seconds of each load phase."""
    _drop(dsn, name)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    target = make_conninfo(dsn, dbname=name)
    from store import PostgresStore

    with psycopg.connect(target, autocommit=True, row_factory=dict_row) as conn:
        if vectors:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        index = index_config(dims) if vectors else None
        PostgresStore(conn, index=index, range_index_fields=RANGE_FIELDS).setup()
        seconds = search_bench.load(conn, size, vectors, dims=dims)
    return target, seconds


def table_bytes(dsn: str) -> dict[str, dict[str, int]]:
    """Heap + TOAST and index bytes of the store's tables."""
    out: dict[str, dict[str, int]] = {}
    with psycopg.connect(dsn) as conn:
        for table in ("store", "store_vectors"):
            row = conn.execute(
                "SELECT pg_table_size(t), pg_indexes_size(t) FROM to_regclass(%s) AS t"
                " WHERE t IS NOT NULL",
                (table,),
            ).fetchone()
            if row is not None:
                out[table] = {"table": int(row[0]), "indexes": int(row[1])}
            indexes = conn.execute(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s)"
                " ORDER BY 1",
                (table,),
            ).fetchall()
            for index, size in indexes:
                out.setdefault("by index", {})[str(index)] = int(size)
    return out


class _Recorder(psycopg.Cursor[Any]):
    """A cursor that keeps what it executes, for EXPLAIN."""

    seen: ClassVar[list[tuple[Any, Any]]] = []

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
        _Recorder.seen.append((query, params))
        return super().execute(query, params, **kw)


@contextmanager
def _stores(dsn: str, vectors: bool, dims: int) -> Iterator[dict[str, dict[str, Any]]]:
    """Each participant's stores, by role: ``plain`` (no ``index=``) and, with pgvector,
    ``embedded`` (the load's ``index=``), each on its own connection as `from_conn_string`
    opens it."""
    from langgraph.store.postgres import PostgresStore as Official

    from store import PostgresStore

    with ExitStack() as stack:
        out: dict[str, dict[str, Any]] = {OFFICIAL: {}, OURS: {}}
        for name, cls in ((OFFICIAL, Official), (OURS, PostgresStore)):
            out[name]["plain"] = stack.enter_context(cls.from_conn_string(dsn))
            if vectors:
                config = index_config(dims)
                out[name]["embedded"] = stack.enter_context(
                    cls.from_conn_string(dsn, index=config)  # type: ignore[arg-type]
                )
        yield out


Call = Callable[[dict[str, Any], str], Any]


def _operations(size: int, vectors: bool, rng: random.Random) -> dict[str, Callable[[], Call]]:
    """Each operation: a draw of its arguments (from `rng`, once per sample), giving a call
    of one participant's stores (the participant's name makes put keys its own)."""
    namespaces = max(1, size // search_bench.PER_NAMESPACE)
    words = [w.strip(".,;:?!") for w in prose.corpus_words() if len(w) > 4]

    def user() -> tuple[str, ...]:
        return ("users", f"u{rng.randrange(namespaces)}", "memories")

    def value() -> dict[str, Any]:
        return {
            "kind": "memory",
            "status": rng.choice(search_bench.STATUSES),
            "topic": f"t{rng.randrange(namespaces)}",
            "score": rng.randrange(1000),
            "text": prose.text(rng, search_bench.TEXT_CHARS),
        }

    def window() -> dict[str, Any]:
        low = rng.randrange(1000 // WINDOW) * WINDOW
        return {"score": {"$gte": low, "$lt": low + WINDOW}}

    def put(role: str) -> Call:
        ns, key, v = user(), f"new-{uuid.uuid4().hex}", value()
        return lambda s, p: s[role].put(ns, f"{key}-{p}", v)

    def get() -> Call:
        g = rng.randrange(size)
        ns = ("users", f"u{g % namespaces}", "memories")
        return lambda s, p: s["plain"].get(ns, f"m{g}")

    def search(ns: tuple[str, ...], where: dict[str, Any], limit: int) -> Call:
        return lambda s, p: s["plain"].search(ns, filter=where, limit=limit)

    def vector(filtered: bool) -> Call:
        query = " ".join(rng.choice(words) for _ in range(rng.randint(2, 3)))
        where = {"topic": f"t{rng.randrange(namespaces)}"} if filtered else None
        return lambda s, p: s["embedded"].search(("users",), query=query, filter=where, limit=LIMIT)

    ops: dict[str, Callable[[], Call]] = {
        PUT: lambda: put("plain"),
        GET: get,
        SEARCH_EQ: lambda: search(
            ("users",),
            {"status": rng.choice(search_bench.STATUSES), "topic": f"t{rng.randrange(namespaces)}"},
            LIMIT,
        ),
        SEARCH_RANGE: lambda: search(("users",), window(), LIMIT),
        USER_EQ: lambda: search(user(), {"status": rng.choice(search_bench.STATUSES)}, 5),
        USER_RANGE: lambda: search(user(), window(), 5),
    }
    if vectors:
        ops[PUT_EMBEDDED] = lambda: put("embedded")
        ops[VECTOR] = lambda: vector(False)
        ops[VECTOR_FILTERED] = lambda: vector(True)
    return ops


def _count(result: Any) -> int:
    return len(result) if isinstance(result, list) else int(result is not None)


def measure(
    dsn: str, size: int, samples: int, *, vectors: bool, dims: int = search_bench.DIMS
) -> dict[str, dict[str, dict[str, float]]]:
    """p50 and p99 (ms) and the mean items returned of each operation, per participant."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    with _stores(dsn, vectors, dims) as stores:
        for op, draw in _operations(size, vectors, random.Random(size)).items():
            times: dict[str, list[float]] = {p: [] for p in stores}
            returned: dict[str, int] = dict.fromkeys(stores, 0)
            order = list(stores)
            for i in range(samples + 10):
                call = draw()  # both participants make the same call
                for p in order if i % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    result = call(stores[p], p)
                    if i >= 10:  # the first calls warm caches and prepare statements
                        times[p].append(time.perf_counter() - start)
                        returned[p] += _count(result)
            out[op] = {
                p: {**growth.summary(t), "returned": returned[p] / samples}
                for p, t in times.items()
            }
    return out


def range_matched(dsn: str, lows: tuple[int, ...] = (0, 500, 900)) -> dict[str, float]:
    """Items a ``score`` window matches, mean over `lows`: by number (ours) and by text (the
    official store's ``value->>'score' >= '<low>'``)."""
    with psycopg.connect(dsn) as conn:
        ours = official = 0
        for low in lows:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE (value->>'score')::numeric >= %(lo)s"
                "   AND (value->>'score')::numeric < %(hi)s),"
                " count(*) FILTER (WHERE value->>'score' >= %(lo)s::text"
                "   AND value->>'score' < %(hi)s::text)"
                " FROM store WHERE prefix LIKE 'users.%%'",
                {"lo": low, "hi": low + WINDOW},
            ).fetchone()
            assert row is not None
            ours += row[0]
            official += row[1]
    return {OURS: ours / len(lows), OFFICIAL: official / len(lows)}


def plans(
    dsn: str, size: int, *, vectors: bool, dims: int = search_bench.DIMS
) -> dict[str, list[list[str]]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement our store sends for one call of each
    operation, on the loaded database (in a transaction rolled back: puts leave no row)."""
    from store import PostgresStore

    out: dict[str, list[list[str]]] = {}
    rng = random.Random(f"plans-{size}")
    with (
        psycopg.connect(dsn, autocommit=True, cursor_factory=_Recorder) as recording,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        config = index_config(dims) if vectors else None
        stores = {
            "plain": PostgresStore(recording),
            "embedded": PostgresStore(recording, index=config),
        }
        for op, draw in _operations(size, vectors, rng).items():
            draw()(stores, OURS)  # prepares what the store prepares
            _Recorder.seen = []
            draw()(stores, OURS)
            statements = [
                (q, p)
                for q, p in _Recorder.seen
                if not str(q).lstrip().upper().startswith(("SET", "SHOW", "BEGIN", "COMMIT"))
            ]
            out[op] = []
            for query, params in statements:
                with conn.transaction(force_rollback=True):
                    if op.startswith("put"):  # the put again as a new item: its row goes first
                        conn.execute(
                            "DELETE FROM store WHERE (prefix, key) = (SELECT prefix, key"
                            " FROM store ORDER BY created_at DESC LIMIT 1)"
                        )
                    text = query if isinstance(query, sql.Composable) else sql.SQL(query)
                    rows = conn.execute(
                        sql.SQL("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ") + text, params
                    ).fetchall()
                out[op].append([r[0] for r in rows])
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    """p50 (solid) and p99 (dashed) against size per operation, log scales, both stores."""
    growth.plot_operations(
        results,
        path,
        OPERATIONS + VECTOR_OPERATIONS,
        xlabel="items in the store",
        title=(
            f"Store operations as the store grows ({results.get('server', '')};"
            " p50 solid, p99 dashed)"
        ),
    )


def run(
    dsn: str,
    sizes: list[int],
    samples: int,
    *,
    dims: int = search_bench.DIMS,
    vectors: bool | None = None,
    keep: bool = False,
    prefix: str = "store_growth",
    explain: bool = True,
) -> dict[str, Any]:
    """Load and measure each size; `vectors` None: when the server has pgvector."""
    if vectors is None:
        vectors = _has_pgvector(dsn)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
    results: dict[str, Any] = {
        "server": f"PostgreSQL {row[0] if row else '?'}",
        "shared_buffers": buffers[0] if buffers else "?",
        "samples": samples,
        "vectors": vectors,
        "dims": dims if vectors else None,
        "sizes": {},
    }
    for size in sizes:
        name = f"{prefix}_{size}"
        target, seconds = load_database(dsn, name, size, vectors=vectors, dims=dims)
        try:
            entry: dict[str, Any] = {
                "load_seconds": seconds,
                "bytes": table_bytes(target),
                "range_matched": range_matched(target),
                "operations": measure(target, size, samples, vectors=vectors, dims=dims),
            }
            if explain:
                entry["plans"] = plans(target, size, vectors=vectors, dims=dims)
        finally:
            if not keep:
                _drop(dsn, name)
        results["sizes"][str(size)] = entry
        _print(size, entry)
    return results


def _print(size: int, entry: dict[str, Any]) -> None:
    mib = {
        t: {k: v / 2**20 for k, v in b.items()}
        for t, b in entry["bytes"].items()
        if t != "by index"
    }
    print(f"\n{size:,} items; load {entry['load_seconds']} s; MiB {json.dumps(mib)}", flush=True)
    print(f"range filter matches (mean): {entry['range_matched']}")
    print(
        "| operation | official p50 | ours p50 | ratio | official p99 | ours p99 | returned o/u |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for op, by in entry["operations"].items():
        o, u = by[OFFICIAL], by[OURS]
        print(
            f"| {op} | {o['p50']:.3f} | {u['p50']:.3f} | {u['p50'] / o['p50']:.2f} | "
            f"{o['p99']:.3f} | {u['p99']:.3f} | {o['returned']:.1f}/{u['returned']:.1f} |",
            flush=True,
        )


def _ms(value: float) -> str:
    """Three significant digits, no exponent."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def markdown(results: dict[str, Any]) -> str:
    """RESULTS.md's tables: load and bytes per size; p50 / p99 per operation and size (ratio
    ours / official at p50), and each store's growth from the first size to the last (p50)."""
    sizes = sorted(results["sizes"], key=int)
    entries = [results["sizes"][s] for s in sizes]
    mib = 2**20
    lines = [
        "| items | load (COPY; ANN index; others) | store heap + TOAST | store indexes |"
        " vectors heap | vectors indexes | range window matches, ours / official |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, e in zip(sizes, entries, strict=True):
        load, b = e["load_seconds"], e["bytes"]
        ann = load.get("store_vectors_embedding_idx", 0.0)
        others = sum(v for k, v in load.items() if k not in ("copy", "store_vectors_embedding_idx"))
        vec = b.get("store_vectors", {"table": 0, "indexes": 0})
        lines.append(
            f"| {int(size):,} | {load['copy']:.1f} s; {ann:.1f} s; {others:.1f} s |"
            f" {b['store']['table'] / mib:,.1f} MiB | {b['store']['indexes'] / mib:,.1f} MiB |"
            f" {vec['table'] / mib:,.1f} MiB | {vec['indexes'] / mib:,.1f} MiB |"
            f" {e['range_matched'][OURS]:,.0f} / {e['range_matched'][OFFICIAL]:,.0f} |"
        )
    head = " | ".join(f"{int(s):,} official | {int(s):,} ours" for s in sizes)
    lines += [
        "",
        f"| operation, p50 / p99 ms (ours ÷ official, p50) | {head} | official last ÷ first |"
        " ours last ÷ first |",
        "|---|" + "---:|" * (2 * len(sizes) + 2),
    ]
    for op in entries[0]["operations"]:
        cells = []
        for e in entries:
            o, u = e["operations"][op][OFFICIAL], e["operations"][op][OURS]
            cells.append(f"{_ms(o['p50'])} / {_ms(o['p99'])}")
            cells.append(f"{_ms(u['p50'])} / {_ms(u['p99'])} ({u['p50'] / o['p50']:.2f})")
        first, last = entries[0]["operations"][op], entries[-1]["operations"][op]
        grew = [last[p]["p50"] / first[p]["p50"] for p in (OFFICIAL, OURS)]
        lines.append(f"| {op} | {' | '.join(cells)} | {grew[0]:.2f} | {grew[1]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a server to create the databases on (else embedded PG18)")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--dims", type=int, default=search_bench.DIMS)
    parser.add_argument("--no-vectors", action="store_true", help="skip the vector operations")
    parser.add_argument("--prefix", default="store_growth", help="database names' prefix")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the loaded databases")
    parser.add_argument("--markdown", type=Path, help="print the tables of a results JSON")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    with search_bench.database(args.dsn) as dsn:
        results = run(
            dsn,
            sizes,
            args.samples,
            dims=args.dims,
            vectors=False if args.no_vectors else None,
            keep=args.keep,
            prefix=args.prefix,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
