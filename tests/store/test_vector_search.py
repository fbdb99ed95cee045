"""Semantic search: every vector type, distance and index kind, scored as the official store scores.

Embeddings come from a deterministic fake (a bag of letters), so every expected score is
computed here, in Python, and compared with what both this store and the official one report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp, SearchItem, SearchOp
from langgraph.store.postgres import PostgresStore as OfficialStore
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from store import (
    AsyncPostgresStore,
    InvalidIndexConfigError,
    PostgresStore,
    VectorSupportMissingError,
)

OFFICIAL_CONNECT: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": 0,
    "row_factory": dict_row,
}
DIMS = 32


def letter_vector(text: str, dims: int = DIMS) -> list[float]:
    """Bag of letters (and digits, folded): a bias term keeps every vector non-zero."""
    vector = [0.0] * max(dims, 32)
    vector[0] = 1.0
    for ch in text.lower():
        if "a" <= ch <= "z":
            vector[1 + ord(ch) - ord("a")] += 1.0
        elif ch.isdigit():
            vector[27 + int(ch) % 5] += 1.0
    return vector[:dims]


class RecordingEmbeddings(Embeddings):
    """Records which texts went to `embed_documents` and which to `embed_query`."""

    def __init__(self, *, dims: int = DIMS, before: Callable[[], None] | None = None) -> None:
        self.dims = dims
        self.before = before
        self.documents: list[str] = []
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.before is not None:
            self.before()
        self.documents.extend(texts)
        return [letter_vector(t, self.dims) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        if self.before is not None:
            self.before()
        self.queries.append(text)
        return letter_vector(text, self.dims)


def index_config(
    embed: Embeddings | None = None,
    *,
    fields: Sequence[str] = ("text",),
    distance: str = "cosine",
    kind: str = "hnsw",
    vector_type: str = "vector",
    **ann: Any,
) -> dict[str, Any]:
    return {
        "dims": DIMS,
        "embed": embed or RecordingEmbeddings(),
        "fields": list(fields),
        "distance_type": distance,
        "ann_index_config": {"kind": kind, "vector_type": vector_type, **ann},
    }


def expected_score(distance: str, a: Sequence[float], b: Sequence[float]) -> float:
    """The official store's score: cosine 1 - distance, l2 -distance, inner product -(<#>)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if distance == "cosine":
        return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    if distance == "l2":
        return -math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    return dot


@contextmanager
def open_store(dsn: str, index: dict[str, Any], *, setup: bool = True) -> Iterator[PostgresStore]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=index)
        if setup:
            store.setup()
        yield store


def query_all(dsn: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def execute(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def vector_fields(dsn: str, prefix: str, key: str | None = None) -> set[str]:
    rows = query_all(
        dsn,
        "SELECT field_name FROM store_vectors WHERE prefix = %s AND (%s::text IS NULL OR key = %s)",
        (prefix, key, key),
    )
    return {r[0] for r in rows}


def keys_and_scores(results: Sequence[SearchItem]) -> list[tuple[str, float]]:
    return [(r.key, float(r.score if r.score is not None else math.nan)) for r in results]


# -- every vector type, distance and index kind ------------------------------------------------

DOCS: list[tuple[str, str]] = [
    ("apple", "apple pie with cinnamon"),
    ("banana", "banana bread"),
    ("cherry", "cherry tart"),
    ("kiwi", "kiwi and lime sorbet"),
    ("zucchini", "zucchini fritters"),
    ("quince", "quince jelly on toast"),
    ("plum", "plum"),
]
QUERIES = ["apple pie with cinnamon", "banana", "fritters"]


def ranked(distance: str, query: str) -> list[tuple[str, float]]:
    """DOCS by expected score, best first; the data is chosen so that no two scores tie."""
    q = letter_vector(query)
    scores = sorted(
        ((key, expected_score(distance, letter_vector(text), q)) for key, text in DOCS),
        key=lambda ks: -ks[1],
    )
    distinct = [round(s, 6) for _, s in scores]
    assert len(set(distinct)) == len(distinct), f"test data ties for {query!r} ({distance})"
    return scores


@pytest.mark.pgvector
@pytest.mark.parametrize("kind", ["hnsw", "ivfflat", "flat"])
@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
@pytest.mark.parametrize("vector_type", ["vector", "halfvec"])
def test_semantic_search_ranks_by_the_official_score(
    dsn: str, vector_type: str, distance: str, kind: str
) -> None:
    config = index_config(distance=distance, kind=kind, vector_type=vector_type)
    with open_store(dsn, config) as store:
        for key, text in DOCS:
            store.put(("docs",), key, {"text": text})
        with psycopg.connect(dsn, **OFFICIAL_CONNECT) as conn:
            # The official store, reading exactly (no ANN index), is the reference.
            conn.execute("SET enable_indexscan = off")
            conn.execute("SET enable_bitmapscan = off")
            official = OfficialStore(conn, index=config)  # type: ignore[arg-type]
            for query in QUERIES:
                expected = ranked(distance, query)
                found = store.search(("docs",), query=query, limit=len(DOCS))
                assert [k for k, _ in keys_and_scores(found)] == [k for k, _ in expected]
                assert [s for _, s in keys_and_scores(found)] == pytest.approx(
                    [s for _, s in expected], rel=1e-5, abs=1e-5
                )
                reference = official.search(("docs",), query=query, limit=len(DOCS))
                assert [k for k, _ in keys_and_scores(reference)] == [k for k, _ in expected]
                assert [s for _, s in keys_and_scores(found)] == pytest.approx(
                    [s for _, s in keys_and_scores(reference)], rel=1e-6, abs=1e-6
                )
                nearest = store.search(("docs",), query=query, limit=1)
                assert [n.key for n in nearest] == [expected[0][0]]
        if distance != "inner_product":  # a text is its own nearest neighbour
            assert [n.key for n in store.search(("docs",), query="plum", limit=1)] == ["plum"]


# -- which embedding method, and when ---------------------------------------------------------


@pytest.mark.pgvector
def test_queries_use_embed_query_and_items_use_embed_documents(dsn: str) -> None:
    embed = RecordingEmbeddings()
    with open_store(dsn, index_config(embed)) as store:
        store.put(("docs",), "a", {"text": "apple pie", "note": "not embedded"})
        store.put(("docs",), "b", {"text": "banana bread"})
        store.search(("docs",), query="sweet apple")
        store.batch(
            [
                SearchOp(("docs",), query="first query"),
                PutOp(("docs",), "c", {"text": "cherry tart"}),
                SearchOp(("docs",), query="second query"),
                SearchOp(("docs",)),  # no query: nothing to embed
            ]
        )
    assert embed.documents == ["apple pie", "banana bread", "cherry tart"]
    assert embed.queries == ["sweet apple", "first query", "second query"]


@pytest.mark.pgvector
async def test_async_queries_use_embed_query_and_items_use_embed_documents(dsn: str) -> None:
    embed = RecordingEmbeddings()
    async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False) as pool:
        store = AsyncPostgresStore(pool, index=index_config(embed))
        await store.setup()
        await store.aput(("docs",), "a", {"text": "apple pie"})
        results = await store.asearch(("docs",), query="apple")
    assert [r.key for r in results] == ["a"]
    assert embed.documents == ["apple pie"]
    assert embed.queries == ["apple"]


@pytest.mark.pgvector
def test_embeddings_happen_before_a_pooled_connection_is_taken(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=2, max_size=2, open=False) as pool:
        pool.wait()

        def all_connections_idle() -> None:
            stats = pool.get_stats()
            assert stats["pool_available"] == stats["pool_size"] == 2, stats

        embed = RecordingEmbeddings(before=all_connections_idle)
        store = PostgresStore(pool, index=index_config(embed))
        store.setup()
        store.put(("docs",), "a", {"text": "apple pie"})
        assert [r.key for r in store.search(("docs",), query="apple")] == ["a"]
        assert embed.documents == ["apple pie"]
        assert embed.queries == ["apple"]


@pytest.mark.pgvector
async def test_async_embeddings_happen_before_a_pooled_connection_is_taken(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=2, max_size=2, open=False) as pool:
        await pool.wait()

        def all_connections_idle() -> None:
            stats = pool.get_stats()
            assert stats["pool_available"] == stats["pool_size"] == 2, stats

        embed = RecordingEmbeddings(before=all_connections_idle)
        store = AsyncPostgresStore(pool, index=index_config(embed))
        await store.setup()
        await store.aput(("docs",), "a", {"text": "apple pie"})
        assert [r.key for r in await store.asearch(("docs",), query="apple")] == ["a"]
        assert embed.documents == ["apple pie"]
        assert embed.queries == ["apple"]


@pytest.mark.pgvector
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactional"])
def test_embeddings_happen_before_the_connection_is_used(dsn: str, autocommit: bool) -> None:
    with psycopg.connect(dsn, autocommit=autocommit) as conn:
        store: PostgresStore | None = None

        def connection_untouched() -> None:
            assert store is not None
            assert not store.lock.locked()
            assert conn.info.transaction_status == TransactionStatus.IDLE
            assert conn.info.pipeline_status == psycopg.pq.PipelineStatus.OFF

        embed = RecordingEmbeddings(before=connection_untouched)
        store = PostgresStore(conn, index=index_config(embed))
        store.setup()
        store.put(("docs",), "a", {"text": "apple pie"})
        assert [r.key for r in store.search(("docs",), query="apple")] == ["a"]
        assert len(embed.documents) + len(embed.queries) == 2


# -- filters, limits and pages ----------------------------------------------------------------

WORDS = ["apple", "banana", "cherry", "kiwi", "lime", "plum", "quince", "zucchini"]


@pytest.mark.pgvector
@pytest.mark.parametrize("kind", ["hnsw", "ivfflat"])
def test_selective_filter_still_returns_limit_results(dsn: str, kind: str) -> None:
    n = 3000
    config = index_config(kind=kind)
    with open_store(dsn, config) as store:
        store.batch(
            [
                PutOp(
                    ("notes",),
                    f"k{i:04d}",
                    {
                        "text": f"note {i} about {WORDS[i % len(WORDS)]}",
                        "n": i,
                        "group": "rare" if i % 100 == 7 else "common",
                    },
                )
                for i in range(n)
            ]
        )
        execute(dsn, "ANALYZE store")
        execute(dsn, "ANALYZE store_vectors")
        query = "a note about apple"
        q = letter_vector(query)
        cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
            ({"group": "rare"}, lambda v: v["group"] == "rare"),
            ({"n": {"$gte": n - 30}}, lambda v: v["n"] >= n - 30),
        ]
        for filter, matches in cases:
            found = store.search(("notes",), query=query, filter=filter, limit=10)
            assert len(found) == 10, filter
            assert all(matches(f.value) for f in found), filter
            scores = [f.score for f in found]
            assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
            assert scores == pytest.approx(
                [expected_score("cosine", letter_vector(f.value["text"]), q) for f in found],
                rel=1e-5,
            )


@pytest.mark.pgvector
@pytest.mark.parametrize("kind", ["hnsw", "ivfflat", "flat"])
def test_offset_pages_concatenate_to_the_whole_result(dsn: str, kind: str) -> None:
    with open_store(dsn, index_config(kind=kind)) as store:
        for i in range(12):
            store.put(("docs",), f"d{i:02d}", {"text": f"{WORDS[i % 8]} {'x' * i} note"})
        query = "apple note"
        whole = store.search(("docs",), query=query, limit=9)
        pages = [store.search(("docs",), query=query, limit=3, offset=o) for o in (0, 3, 6)]
        assert len(whole) == 9
        assert [p.key for page in pages for p in page] == [w.key for w in whole]
        assert [p.score for page in pages for p in page] == [w.score for w in whole]
        assert store.search(("docs",), query=query, limit=3, offset=11)[0].key not in {
            w.key for w in whole
        }
        assert store.search(("docs",), query=query, limit=3, offset=12) == []


@pytest.mark.pgvector
@pytest.mark.parametrize("kind", ["hnsw", "ivfflat", "flat"])
def test_an_item_with_many_vectors_does_not_crowd_out_the_others(dsn: str, kind: str) -> None:
    with open_store(dsn, index_config(kind=kind, fields=["tags[*]"])) as store:
        store.put(("docs",), "many", {"tags": [f"apple {'p' * i}" for i in range(20)]})
        store.put(("docs",), "b", {"tags": ["banana"]})
        store.put(("docs",), "c", {"tags": ["cherry"]})
        found = store.search(("docs",), query="apple", limit=3)
        assert [f.key for f in found][:1] == ["many"]
        assert len(found) == 3


# -- stale vectors ------------------------------------------------------------------------------


@pytest.mark.pgvector
def test_put_with_index_false_deletes_the_items_vectors(dsn: str) -> None:
    with open_store(dsn, index_config()) as store:
        store.put(("docs",), "a", {"text": "apple pie"})
        store.put(("docs",), "b", {"text": "apple tart"})
        assert vector_fields(dsn, "docs", "a") == {"text"}

        store.put(("docs",), "a", {"text": "apple pie, unindexed"}, index=False)
        assert vector_fields(dsn, "docs", "a") == set()
        assert vector_fields(dsn, "docs", "b") == {"text"}
        assert [r.key for r in store.search(("docs",), query="apple pie")] == ["b"]
        item = store.get(("docs",), "a")
        assert item is not None
        assert item.value == {"text": "apple pie, unindexed"}
        assert sorted(r.key for r in store.search(("docs",))) == ["a", "b"]


@pytest.mark.pgvector
def test_put_indexing_fewer_fields_removes_the_stale_field_rows(dsn: str) -> None:
    with open_store(dsn, index_config(fields=["title", "body", "tags[*]"])) as store:
        full = {"title": "pie", "body": "apple pie", "tags": ["sweet", "baked", "fruit"]}
        store.put(("docs",), "a", full)
        assert vector_fields(dsn, "docs", "a") == {
            "title",
            "body",
            "tags[*].0",
            "tags[*].1",
            "tags[*].2",
        }
        store.put(("docs",), "a", {**full, "tags": ["sweet"]})
        assert vector_fields(dsn, "docs", "a") == {"title", "body", "tags[*]"}
        store.put(("docs",), "a", {"title": "pie", "tags": ["sweet"]})  # no body any more
        assert vector_fields(dsn, "docs", "a") == {"title", "tags[*]"}
        store.put(("docs",), "a", full, index=["body"])
        assert vector_fields(dsn, "docs", "a") == {"body"}
        found = store.search(("docs",), query="pie")
        assert [r.key for r in found] == ["a"]
        assert found[0].score == pytest.approx(
            expected_score("cosine", letter_vector("apple pie"), letter_vector("pie"))
        )


@pytest.mark.pgvector
def test_field_names_are_the_official_ones(dsn: str) -> None:
    fields = ["title", "tags[*]", "sections[*].heading", "meta.summary"]
    config = index_config(fields=fields)
    values: dict[str, dict[str, Any]] = {
        "many": {
            "title": "pie",
            "tags": ["apple", "sweet", "oven"],
            "sections": [{"heading": "dough"}, {"heading": "filling"}],
            "meta": {"summary": "an apple pie"},
        },
        "single": {"title": "bread", "tags": ["banana"], "sections": [{"heading": "loaf"}]},
        "sparse": {"title": "tart", "unrelated": "value"},
    }
    with open_store(dsn, config) as store:
        for key, value in values.items():
            store.put(("ours",), key, value)
        store.put(("ours",), "chosen", values["many"], index=["meta.summary", "tags[*]"])
        with psycopg.connect(dsn, **OFFICIAL_CONNECT) as conn:
            official = OfficialStore(conn, index=config)  # type: ignore[arg-type]
            for key, value in values.items():
                official.put(("official",), key, value)
            official.put(("official",), "chosen", values["many"], index=["meta.summary", "tags[*]"])

    def rows(prefix: str) -> set[tuple[Any, ...]]:
        return set(
            query_all(
                dsn,
                "SELECT key, field_name, embedding::text FROM store_vectors WHERE prefix = %s",
                (prefix,),
            )
        )

    assert rows("ours") == rows("official")
    assert vector_fields(dsn, "ours", "many") == {
        "title",
        "tags[*].0",
        "tags[*].1",
        "tags[*].2",
        "sections[*].heading.0",
        "sections[*].heading.1",
        "meta.summary",
    }
    assert vector_fields(dsn, "ours", "single") == {"title", "tags[*]", "sections[*].heading"}
    assert vector_fields(dsn, "ours", "sparse") == {"title"}
    assert vector_fields(dsn, "ours", "chosen") == {
        "meta.summary",
        "tags[*].0",
        "tags[*].1",
        "tags[*].2",
    }


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.pgvector
def test_mismatched_embedding_dimensions_raise_and_store_nothing(dsn: str) -> None:
    with open_store(dsn, index_config()):
        pass  # the tables, with vector(DIMS)
    wrong = index_config(RecordingEmbeddings(dims=DIMS + 1))
    with open_store(dsn, wrong, setup=False) as store:
        with pytest.raises(InvalidIndexConfigError, match=f"{DIMS + 1}.*{DIMS}"):
            store.put(("docs",), "a", {"text": "apple"})
        with pytest.raises(InvalidIndexConfigError):
            store.batch(
                [
                    PutOp(("docs",), "plain", {"text": "unindexed"}, index=False),
                    PutOp(("docs",), "b", {"text": "banana"}),
                ]
            )
        assert query_all(dsn, "SELECT count(*) FROM store") == [(0,)]
        assert query_all(dsn, "SELECT count(*) FROM store_vectors") == [(0,)]

    with open_store(dsn, index_config()) as good:
        good.put(("docs",), "a", {"text": "apple"})
    with open_store(dsn, wrong, setup=False) as store:
        with pytest.raises(InvalidIndexConfigError):
            store.search(("docs",), query="apple")
        item = store.get(("docs",), "a")
        assert item is not None  # what needs no embedding still works


def test_setup_without_pgvector_says_pgvector_is_missing(dsn: str, has_pgvector: bool) -> None:
    if has_pgvector:
        pytest.skip("the server has pgvector; this runs on one without it (e.g. PostgreSQL 15)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=index_config())
        with pytest.raises(VectorSupportMissingError, match="pgvector") as raised:
            store.setup()
        assert "does not have" in str(raised.value) or "missing" in str(raised.value)
        # Nothing half-done: a store without semantic search sets up and works.
        plain = PostgresStore(conn)
        plain.setup()
        plain.put(("docs",), "a", {"text": "apple"})
        assert [r.key for r in plain.search(("docs",))] == ["a"]


async def test_async_setup_without_pgvector_says_pgvector_is_missing(
    dsn: str, has_pgvector: bool
) -> None:
    if has_pgvector:
        pytest.skip("the server has pgvector; this runs on one without it (e.g. PostgreSQL 15)")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        store = AsyncPostgresStore(conn, index=index_config())
        with pytest.raises(VectorSupportMissingError, match="pgvector"):
            await store.setup()
