"""Store search at 100,000 items: full-text, hybrid and vector latency, and ANN recall.

Run: ``python -m benchmarks.search_bench [--dsn DSN] [--items 100000] [--queries 40]``
(default server: an embedded PostgreSQL 18 with pgvector). It prints JSON; the figures in
benchmarks/RESULTS.md ("Store search") come from it.

The items are the store workload's (benchmarks/workloads/store_ops.py: namespaces of 100
under ``("users", "u<n>", "memories")``, ``status`` of 4 values, ``topic`` one per 100 items,
``score``), with a ``text`` of prose (benchmarks/prose.py) instead of its six random words,
so that stemming and ranking have real English to work on. They are bulk-loaded by COPY as
the rows the store writes (its columns and values; the indexes are dropped for the load and
re-created from their own definitions). Embeddings are `HashedEmbeddings`: deterministic,
offline. The official store reads the same tables (the compatibility contract), so its
vector search runs on exactly the same data. Every variant answers the same queries, taken
in turn (interleaved), one call at a time on one connection.

Recall@10 is measured against an exact scan with the same filter: for the store's searches
(what a caller gets, our exact re-run included) and for the bare ANN index scan (forced, with
the filter applied to what it returns), at pgvector's default ``hnsw.ef_search`` (40), at a
raised one and with pgvector 0.8's iterative scan.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings
from psycopg.rows import dict_row

from benchmarks import prose

DIMS = 128
PER_NAMESPACE = 100
STATUSES = ("active", "archived", "pending", "flagged")
TEXT_CHARS = 240
LIMIT = 10
RAISED_EF = 200
_TOKEN = re.compile(r"[a-z0-9]+")


class HashedEmbeddings(Embeddings):
    """Feature hashing of words and character trigrams into `dims` signed buckets, L2-
    normalised: deterministic, no model, and fuzzier than full text (trigrams match
    inflections and parts of words)."""

    def __init__(self, dims: int = DIMS) -> None:
        self.dims = dims
        self._cache: dict[str, tuple[int, float]] = {}
        self._words: dict[str, np.ndarray[Any, Any]] = {}

    def _bucket(self, feature: str) -> tuple[int, float]:
        hit = self._cache.get(feature)
        if hit is None:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            n = int.from_bytes(digest, "little")
            hit = self._cache[feature] = (n % self.dims, 1.0 if (n >> 32) & 1 else -1.0)
        return hit

    def _word(self, word: str) -> np.ndarray[Any, Any]:
        """A word's features summed (cached: the load embeds a million texts)."""
        hit = self._words.get(word)
        if hit is None:
            hit = np.zeros(self.dims)
            for feature in [f"w:{word}"] + [
                f"g:{t}" for t in (f" {word} "[i : i + 3] for i in range(len(word)))
            ]:
                i, sign = self._bucket(feature)
                hit[i] += sign
            self._words[word] = hit
        return hit

    def vector(self, text: str) -> list[float]:
        words = _TOKEN.findall(text.lower())
        out = np.sum([self._word(w) for w in words], axis=0) if words else np.zeros(self.dims)
        norm = float(np.linalg.norm(out))
        if norm == 0:
            out[0] = 1.0
            norm = 1.0
        values: list[float] = (out / norm).tolist()
        return values

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text)


def index_config(dims: int = DIMS, **extra: Any) -> dict[str, Any]:
    return {
        "dims": dims,
        "embed": HashedEmbeddings(dims),
        "fields": ["text"],
        "text": {"language": "english"},
        **extra,
    }


def items(count: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    rng = random.Random("search-bench-items")
    namespaces = max(1, count // PER_NAMESPACE)
    for g in range(count):
        yield (
            f"users.u{g % namespaces}.memories",
            f"m{g}",
            {
                "kind": "memory",
                "status": STATUSES[rng.randrange(4)],
                "topic": f"t{rng.randrange(namespaces)}",
                "score": rng.randrange(1000),
                "text": prose.text(rng, TEXT_CHARS),
            },
        )


def load(
    conn: psycopg.Connection[Any], count: int, vectors: bool, *, dims: int = DIMS
) -> dict[str, float]:
    """COPY the items (and their `dims`-dimensional vectors) into the set-up tables, with the
    store's secondary indexes (full text, GIN on values, range, ANN) dropped for the load and
    re-created after from their own definitions. Seconds per phase: ``copy``, each index
    re-created (by name), ``vacuum``."""
    embed = HashedEmbeddings(dims)
    names = ["store_text_%", "store_value_idx", "store_range_%"] + (
        ["store_vectors_embedding_idx"] if vectors else []
    )
    tables = ["store", "store_vectors"] if vectors else ["store"]
    found = conn.execute(
        "SELECT c.oid::regclass::text AS name, pg_get_indexdef(c.oid) AS ddl"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = ANY(%s::regclass[]) AND c.relname LIKE ANY(%s)",
        (tables, names),
    ).fetchall()
    for r in found:
        conn.execute(f"DROP INDEX {r['name']}")
    ts = "2025-01-01 00:00:00+00"
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(
            "COPY store (prefix, key, value, created_at, updated_at, ttl_exact_at) FROM STDIN"
        ) as copy:
            for prefix, key, value in items(count):
                copy.write_row((prefix, key, json.dumps(value), ts, ts, ts))
        if vectors:
            with cur.copy(
                "COPY store_vectors (prefix, key, field_name, embedding, created_at, updated_at)"
                " FROM STDIN"
            ) as copy:
                for prefix, key, value in items(count):
                    copy.write_row((prefix, key, "text", str(embed.vector(value["text"])), ts, ts))
    seconds["copy"] = time.perf_counter() - started
    conn.execute("SET maintenance_work_mem = '2GB'")  # the HNSW graph of 10^6 items fits
    for r in found:
        started = time.perf_counter()
        conn.execute(r["ddl"])
        seconds[r["name"]] = time.perf_counter() - started
    conn.execute("RESET maintenance_work_mem")
    started = time.perf_counter()
    conn.execute("VACUUM ANALYZE store" + (", store_vectors" if vectors else ""))
    seconds["vacuum"] = time.perf_counter() - started
    return {name: round(s, 2) for name, s in seconds.items()}


def queries(count: int) -> list[str]:
    """Two or three words of an item's text: each query matches something."""
    rng = random.Random("search-bench-queries")
    words = [w for w in prose.corpus_words() if len(w) > 4]
    return [
        " ".join(rng.choice(words).strip(".,;:?!") for _ in range(rng.randint(2, 3)))
        for _ in range(count)
    ]


def p50_ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000, 3)


def exact_top(conn: psycopg.Connection[Any], vector: str, topic: str | None) -> float:
    """The 10th smallest exact distance (ties count as hits)."""
    row = conn.execute(
        "SELECT max(d) AS d FROM (SELECT (sv.embedding <=> %s::vector) + 0 AS d"
        " FROM store_vectors sv JOIN store s USING (prefix, key)"
        " WHERE %s::text IS NULL OR s.value @> jsonb_build_object('topic', %s::text)"
        " ORDER BY 1 LIMIT %s) AS n",
        (vector, topic, topic, LIMIT),
    ).fetchone()
    return float(row["d"]) if row and row["d"] is not None else 0.0


def hits(
    conn: psycopg.Connection[Any], vector: str, keys: list[tuple[str, str]], worst: float
) -> int:
    if not keys:
        return 0
    rows = conn.execute(
        "SELECT sv.embedding <=> %s::vector AS d FROM store_vectors sv"
        " JOIN unnest(%s::text[], %s::text[]) AS f(prefix, key) USING (prefix, key)",
        (vector, [k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return sum(1 for r in rows if r["d"] <= worst + 1e-6)


def bare_ann(
    conn: psycopg.Connection[Any], vector: str, topic: str, settings: dict[str, str]
) -> list[tuple[str, str]]:
    """The HNSW index scan alone, filter applied to what it yields (no exact fallback)."""
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        conn.execute("SET LOCAL enable_sort = off")  # no exact top-N sort: the HNSW order
        for guc, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, true)", (guc, value))
        rows = conn.execute(
            "SELECT sv.prefix, sv.key FROM store_vectors sv JOIN store s USING (prefix, key)"
            " WHERE s.value @> jsonb_build_object('topic', %s::text)"
            " ORDER BY sv.embedding <=> %s::vector LIMIT %s",
            (topic, vector, LIMIT),
        ).fetchall()
    return [(r["prefix"], r["key"]) for r in rows]


@contextmanager
def database(dsn: str | None) -> Iterator[str]:
    if dsn is None:
        from checkpoint_pg.cli.embedded import start_ephemeral

        server = start_ephemeral()
        try:
            yield server.dsn
        finally:
            server.stop()
    else:
        yield dsn


Variants = dict[str, Callable[[int], Any]]


def _prepare(conn: psycopg.Connection[Any], count: int, vectors: bool, reuse: bool) -> float | None:
    """Set the store up and load it (None: `reuse`, and it holds `count` items already);
    how long the load took."""
    from store import PostgresStore

    present = conn.execute("SELECT to_regclass('store') IS NOT NULL AS t").fetchone()
    if reuse and present and present["t"]:
        loaded = conn.execute("SELECT count(*) AS n FROM store").fetchone()
        if loaded and loaded["n"] == count:
            return None
    conn.execute(
        "DROP TABLE IF EXISTS store_vectors, store, store_migrations, vector_migrations,"
        " store_pg_migrations CASCADE"
    )
    if vectors:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    PostgresStore(conn, index=base_config(vectors)).setup()
    started = time.perf_counter()
    load(conn, count, vectors)
    return round(time.perf_counter() - started, 1)


def base_config(vectors: bool) -> dict[str, Any]:
    return index_config() if vectors else {"fields": ["text"], "text": {"language": "english"}}


def _variants(
    conn: psycopg.Connection[Any], vectors: bool, qs: list[str], topics: list[str]
) -> Variants:
    """Every search timed, by name: each a call of one query (by its number)."""
    from langgraph.store.postgres import PostgresStore as Official

    from store import PostgresStore

    base = base_config(vectors)
    ours = PostgresStore(conn, index=base)
    ours_all = PostgresStore(conn, index={**base, "text": {"language": "english", "match": "all"}})

    def call(store: Any, filtered: str | None, **kw: Any) -> Callable[[int], Any]:
        def one(i: int) -> Any:
            where = {"status": "active"} if filtered == "status" else None
            where = {"topic": topics[i]} if filtered == "topic" else where
            return store.search(("users",), query=qs[i], filter=where, limit=LIMIT, **kw)

        return one

    variants: Variants = {
        "text": call(ours, None, mode="text"),
        "text, filter status (25%)": call(ours, "status", mode="text"),
        "text, filter topic (0.1%)": call(ours, "topic", mode="text"),
        "text, match all": call(ours_all, None, mode="text"),
        "text, match all, filter status (25%)": call(ours_all, "status", mode="text"),
    }
    if not vectors:
        return variants
    variants["hybrid"] = call(ours, None)
    variants["hybrid, filter status (25%)"] = call(ours, "status")
    variants["hybrid, match all"] = call(ours_all, None)
    variants["hybrid, filter topic (0.1%)"] = call(ours, "topic")
    stores: dict[str, Any] = {
        "ours": ours,
        f"ours ef_search={RAISED_EF}": PostgresStore(
            conn, index=index_config(ann_search={"ef_search": RAISED_EF})
        ),
        "ours iterative_scan": PostgresStore(
            conn, index=index_config(ann_search={"iterative_scan": "relaxed_order"})
        ),
        "official": Official(conn, index=index_config()),  # type: ignore[arg-type]
    }
    for name, store in stores.items():
        kw: dict[str, Any] = {} if name == "official" else {"mode": "vector"}
        variants[f"vector, {name}"] = call(store, None, **kw)
        variants[f"vector, filter topic (0.1%), {name}"] = call(store, "topic", **kw)
    return variants


def _recall(
    conn: psycopg.Connection[Any], found: dict[str, list[Any]], qs: list[str], topics: list[str]
) -> dict[str, float]:
    """Recall@10 of each vector variant's answers, and of the bare HNSW scan."""
    embed = HashedEmbeddings()
    recall: dict[str, float] = {}
    for name in [n for n in found if n.startswith("vector")]:
        got = 0
        for i, items_found in enumerate(found[name]):
            vector = str(embed.vector(qs[i]))
            worst = exact_top(conn, vector, topics[i] if "filter" in name else None)
            keys = [(".".join(x.namespace), x.key) for x in items_found]
            got += hits(conn, vector, keys, worst)
        recall[name] = round(got / (LIMIT * len(qs)), 4)
    for label, settings in {
        "bare hnsw, filter topic, ef_search=40": {"hnsw.ef_search": "40"},
        f"bare hnsw, filter topic, ef_search={RAISED_EF}": {"hnsw.ef_search": str(RAISED_EF)},
        "bare hnsw, filter topic, iterative relaxed": {"hnsw.iterative_scan": "relaxed_order"},
    }.items():
        got = 0
        for i, q in enumerate(qs):
            vector = str(embed.vector(q))
            keys = bare_ann(conn, vector, topics[i], settings)
            got += hits(conn, vector, keys, exact_top(conn, vector, topics[i]))
        recall[label] = round(got / (LIMIT * len(qs)), 4)
    return recall


def run(dsn: str, count: int, nq: int, *, reuse: bool = False) -> dict[str, Any]:
    """The figures; `reuse`: keep the store tables when they hold `count` items already."""
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    available = "SELECT 1 FROM pg_available_extensions WHERE name='vector'"
    vectors = conn.execute(available).fetchone() is not None
    result: dict[str, Any] = {"items": count, "queries": nq}
    load_s = _prepare(conn, count, vectors, reuse)
    if load_s is not None:
        result["load_s"] = load_s
    row = conn.execute("SHOW server_version").fetchone()
    result["server"] = row["server_version"] if row else "?"
    qs = queries(nq)
    rng = random.Random("search-bench-filters")
    topics = [f"t{rng.randrange(max(1, count // PER_NAMESPACE))}" for _ in qs]
    variants = _variants(conn, vectors, qs, topics)
    for i in range(min(3, nq)):  # warm up
        for call in variants.values():
            call(i)
    times: dict[str, list[float]] = {name: [] for name in variants}
    found: dict[str, list[Any]] = {name: [] for name in variants}
    for i in range(nq):  # interleaved: every variant answers query i before query i + 1
        for name, call in variants.items():
            start = time.perf_counter()
            found[name].append(call(i))
            times[name].append(time.perf_counter() - start)
    result["p50_ms"] = {name: p50_ms(t) for name, t in times.items()}
    result["mean_results"] = {n: round(sum(map(len, f)) / nq, 2) for n, f in found.items()}
    if vectors:
        result["recall@10"] = _recall(conn, found, qs, topics)
    conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a database to use (its store tables are replaced)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="keep tables already loaded")
    args = parser.parse_args()
    with database(args.dsn) as dsn:
        print(json.dumps(run(dsn, args.items, args.queries, reuse=args.reuse), indent=2))


if __name__ == "__main__":
    main()
