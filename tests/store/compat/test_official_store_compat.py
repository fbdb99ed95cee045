"""The store and the official `langgraph-checkpoint-postgres` 3.2.0 store share one database.

Items, deletions, TTLs, migration rows and vectors written by either are read by the other
exactly as the writer itself reads them. Both stores run on the connection the official store
requires (``autocommit=True, prepare_threshold=0, row_factory=dict_row``): switching is a
change of import.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, Item, SearchItem
from langgraph.store.postgres import PostgresStore as OfficialStore
from langgraph.store.postgres.aio import AsyncPostgresStore as OfficialAsyncStore
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from checkpoint_pg.errors import SchemaNotReadyError
from store import AsyncPostgresStore, PostgresStore
from tests.harness import DatabaseFactory

# On Citus the official store's puts and reads are refused (its statements apply now() to a
# column in an UPDATE or an upsert's DO UPDATE): tests/store/test_citus.py specifies which of
# its calls work on tables this package distributed.
pytestmark = pytest.mark.nocitus("the official store cannot write to distributed tables")

OFFICIAL_CONNECT: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": 0,
    "row_factory": dict_row,
}
DIRECTIONS = [
    pytest.param("official", "ours", id="official-writes-ours-reads"),
    pytest.param("ours", "official", id="ours-writes-official-reads"),
]
OFFICIAL_STORE_MIGRATIONS = [0, 1, 2, 3]

# -- a deterministic embedding: similar texts get similar vectors -----------------------------

DIMS = 32


def letter_vector(text: str) -> list[float]:
    """Bag of letters (and digits, folded): a bias term keeps every vector non-zero."""
    vector = [0.0] * DIMS
    vector[0] = 1.0
    for ch in text.lower():
        if "a" <= ch <= "z":
            vector[1 + ord(ch) - ord("a")] += 1.0
        elif ch.isdigit():
            vector[27 + int(ch) % 5] += 1.0
    return vector


class LetterEmbeddings(Embeddings):
    """Embeds documents and queries alike, so both stores see the same vectors."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [letter_vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return letter_vector(text)


def index_config(**extra: Any) -> dict[str, Any]:
    return {"dims": DIMS, "embed": LetterEmbeddings(), "fields": ["text"], **extra}


# -- stores -----------------------------------------------------------------------------------


@contextmanager
def open_store(kind: str, dsn: str, *, setup: bool = True, **config: Any) -> Iterator[BaseStore]:
    """A sync store of `kind` on an official-style connection, set up unless told not to."""
    with psycopg.connect(dsn, **OFFICIAL_CONNECT) as conn:
        store: BaseStore = (
            OfficialStore(conn, **config) if kind == "official" else PostgresStore(conn, **config)
        )
        if setup:
            store.setup()  # type: ignore[attr-defined]
        yield store


@asynccontextmanager
async def aopen_store(kind: str, dsn: str, **config: Any) -> AsyncIterator[BaseStore]:
    """An async store of `kind`, set up: the official on a connection, ours on a pool."""
    if kind == "official":
        async with await psycopg.AsyncConnection.connect(dsn, **OFFICIAL_CONNECT) as conn:
            official = OfficialAsyncStore(conn, **config)
            await official.setup()
            yield official
        return
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=2, kwargs=dict(OFFICIAL_CONNECT), open=False
    ) as pool:
        ours = AsyncPostgresStore(pool, **config)
        await ours.setup()
        yield ours


def query_all(dsn: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def execute(dsn: str, sql: str, params: Sequence[Any] = ()) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, params)


def migration_rows(dsn: str, table: str) -> list[int]:
    return [r[0] for r in query_all(dsn, f"SELECT v FROM {table} ORDER BY v")]


def seconds_left(dsn: str, namespace: tuple[str, ...], key: str) -> float | None:
    rows = query_all(
        dsn,
        "SELECT extract(epoch FROM expires_at - now())::float8 FROM store"
        " WHERE prefix = %s AND key = %s",
        (".".join(namespace), key),
    )
    assert rows, f"{namespace}/{key} is not in the store table"
    left: float | None = rows[0][0]
    return left


def expire_soon(dsn: str, namespace: tuple[str, ...], key: str, seconds: float) -> None:
    execute(
        dsn,
        "UPDATE store SET expires_at = now() + make_interval(secs => %s)"
        " WHERE prefix = %s AND key = %s",
        (seconds, ".".join(namespace), key),
    )


# -- plain items ------------------------------------------------------------------------------

ITEMS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (
        ("users", "alice", "prefs"),
        "theme",
        {"kind": "pref", "theme": "dark", "sizes": [1, 2.5, -3], "nested": {"on": True, "x": None}},
    ),
    (("users", "alice", "prefs"), "lang", {"kind": "pref", "text": "héllo wörld ✓ 日本"}),
    (("users", "bob"), "profile", {"kind": "profile", "age": 42, "tags": []}),
    (("docs",), "read me", {"kind": "doc", "text": "how to start", "big": 12345678901234}),
    (("docs", "drafts"), "v1", {"kind": "doc", "text": "draft", "empty": {}}),
    (("team_a",), "k%1", {"kind": "misc"}),
    (("team%a",), "k_1", {"kind": "misc", "quote": 'it\'s "quoted" \\ back'}),
]


def put_items(store: BaseStore) -> None:
    # One put per item: distinct updated_at values, so the order of a search is defined.
    for namespace, key, value in ITEMS:
        store.put(namespace, key, value)


def snapshot(store: BaseStore) -> dict[str, Any]:
    """Everything a user reads back, as plain data (timestamps included)."""

    def items(found: Sequence[Item | None]) -> list[dict[str, Any] | None]:
        return [None if i is None else i.dict() for i in found]

    return {
        "gets": items([store.get(ns, key) for ns, key, _ in ITEMS]),
        "missing": store.get(("users", "alice", "prefs"), "nope"),
        "search_all": items(store.search((), limit=100)),
        "search_users": items(store.search(("users",), limit=100)),
        "search_filtered": items(store.search(("users",), filter={"kind": "pref"})),
        "search_page": items(store.search((), limit=2, offset=1)),
        "search_underscore": items(store.search(("team_a",))),
        "search_percent": items(store.search(("team%a",))),
        "namespaces": store.list_namespaces(limit=100),
        "depth_1": store.list_namespaces(max_depth=1, limit=100),
        "prefix": store.list_namespaces(prefix=("users",)),
        "suffix": store.list_namespaces(suffix=("prefs",)),
        "wildcard": store.list_namespaces(prefix=("users", "*", "prefs")),
    }


async def asnapshot(store: BaseStore) -> dict[str, Any]:
    """Async twin of `snapshot`."""

    def items(found: Sequence[Item | None]) -> list[dict[str, Any] | None]:
        return [None if i is None else i.dict() for i in found]

    return {
        "gets": items([await store.aget(ns, key) for ns, key, _ in ITEMS]),
        "missing": await store.aget(("users", "alice", "prefs"), "nope"),
        "search_all": items(await store.asearch((), limit=100)),
        "search_users": items(await store.asearch(("users",), limit=100)),
        "search_filtered": items(await store.asearch(("users",), filter={"kind": "pref"})),
        "search_page": items(await store.asearch((), limit=2, offset=1)),
        "search_underscore": items(await store.asearch(("team_a",))),
        "search_percent": items(await store.asearch(("team%a",))),
        "namespaces": await store.alist_namespaces(limit=100),
        "depth_1": await store.alist_namespaces(max_depth=1, limit=100),
        "prefix": await store.alist_namespaces(prefix=("users",)),
        "suffix": await store.alist_namespaces(suffix=("prefs",)),
        "wildcard": await store.alist_namespaces(prefix=("users", "*", "prefs")),
    }


def check_snapshot_content(snap: dict[str, Any]) -> None:
    """The snapshot holds what was written (not merely the same thing twice)."""
    assert [g["value"] for g in snap["gets"]] == [value for _, _, value in ITEMS]
    assert [(tuple(g["namespace"]), g["key"]) for g in snap["gets"]] == [
        (ns, key) for ns, key, _ in ITEMS
    ]
    assert snap["missing"] is None
    # newest first
    assert [s["key"] for s in snap["search_all"]] == [key for _, key, _ in reversed(ITEMS)]
    assert [s["key"] for s in snap["search_filtered"]] == ["lang", "theme"]
    assert [s["key"] for s in snap["search_underscore"]] == ["k%1"]
    assert [s["key"] for s in snap["search_percent"]] == ["k_1"]
    assert snap["depth_1"] == [("docs",), ("team%a",), ("team_a",), ("users",)]
    assert snap["prefix"] == [("users", "alice", "prefs"), ("users", "bob")]
    assert snap["suffix"] == [("users", "alice", "prefs")]
    assert snap["wildcard"] == [("users", "alice", "prefs")]


@pytest.mark.parametrize(("writer", "reader"), DIRECTIONS)
def test_items_written_by_one_are_read_identically_by_the_other(
    dsn: str, writer: str, reader: str
) -> None:
    with open_store(writer, dsn) as w:
        put_items(w)
        written = snapshot(w)
    check_snapshot_content(written)
    with open_store(reader, dsn) as r:
        assert snapshot(r) == written


@pytest.mark.parametrize(("writer", "reader"), DIRECTIONS)
async def test_items_written_by_one_are_read_identically_by_the_other_async(
    dsn: str, writer: str, reader: str
) -> None:
    async with aopen_store(writer, dsn) as w:
        for namespace, key, value in ITEMS:
            await w.aput(namespace, key, value)
        written = await asnapshot(w)
    check_snapshot_content(written)
    async with aopen_store(reader, dsn) as r:
        assert await asnapshot(r) == written


@pytest.mark.parametrize(("writer", "other"), DIRECTIONS)
def test_updates_by_one_keep_created_at_for_the_other(dsn: str, writer: str, other: str) -> None:
    with open_store(writer, dsn) as w, open_store(other, dsn) as o:
        w.put(("docs",), "a", {"v": 1})
        first = o.get(("docs",), "a")
        o.put(("docs",), "a", {"v": 2})
        second = w.get(("docs",), "a")
        assert first is not None
        assert second is not None
        assert second.value == {"v": 2}
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
        assert o.get(("docs",), "a") == second


@pytest.mark.parametrize(("writer", "deleter"), DIRECTIONS)
def test_deletes_by_one_are_seen_by_the_other(dsn: str, writer: str, deleter: str) -> None:
    with open_store(writer, dsn) as w, open_store(deleter, dsn) as d:
        for key in ("a", "b", "c"):
            w.put(("docs", "x"), key, {"key": key})
        d.delete(("docs", "x"), "b")
        assert w.get(("docs", "x"), "b") is None
        assert [i.key for i in w.search(("docs",))] == ["c", "a"]
        d.delete(("docs", "x"), "a")
        d.delete(("docs", "x"), "c")
        assert w.search(("docs",)) == []
        assert w.list_namespaces() == []
    assert query_all(dsn, "SELECT count(*) FROM store") == [(0,)]


async def test_async_deletes_by_ours_are_seen_by_the_official_store(dsn: str) -> None:
    async with aopen_store("official", dsn) as official, aopen_store("ours", dsn) as ours:
        await official.aput(("docs",), "a", {"v": 1})
        await official.aput(("docs",), "b", {"v": 2})
        await ours.adelete(("docs",), "a")
        assert await official.aget(("docs",), "a") is None
        assert [i.key for i in await official.asearch(("docs",))] == ["b"]
        await official.adelete(("docs",), "b")
        assert await ours.asearch(("docs",)) == []


# -- setup on the other's database ----------------------------------------------------------

SETUP_CASES = [
    pytest.param(None, id="no-index"),
    pytest.param("hnsw", id="hnsw", marks=pytest.mark.pgvector),
    pytest.param("ivfflat", id="ivfflat", marks=pytest.mark.pgvector),
    pytest.param("flat", id="flat", marks=pytest.mark.pgvector),
]


@pytest.mark.parametrize(("first", "second"), DIRECTIONS)
@pytest.mark.parametrize("kind", SETUP_CASES)
def test_setup_of_either_on_the_others_database_keeps_data_and_migration_rows(
    dsn: str, first: str, second: str, kind: str | None
) -> None:
    config: dict[str, Any] = {}
    if kind is not None:
        config["index"] = index_config(ann_index_config={"kind": kind})
    with open_store(first, dsn, **config) as a:
        a.put(("docs",), "first", {"text": "written by the first store"})
    expected_vectors = [0, 1] if kind == "flat" else [0, 1, 2]
    vector_rows_before = migration_rows(dsn, "vector_migrations") if kind else None

    with open_store(second, dsn, **config) as b:
        b.setup()  # type: ignore[attr-defined]  # and again: still a no-op
        b.put(("docs",), "second", {"text": "written by the second store"})
        assert [i.key for i in b.search(("docs",))] == ["second", "first"]
    with open_store(first, dsn, **config) as a:  # set up once more by the first
        assert [i.key for i in a.search(("docs",))] == ["second", "first"]
        first_item = a.get(("docs",), "first")
        assert first_item is not None
        assert first_item.value == {"text": "written by the first store"}

    assert migration_rows(dsn, "store_migrations") == OFFICIAL_STORE_MIGRATIONS
    if kind is not None:
        assert vector_rows_before == expected_vectors
        assert migration_rows(dsn, "vector_migrations") == expected_vectors
        has_ann = query_all(
            dsn,
            "SELECT count(*) FROM pg_indexes"
            " WHERE tablename = 'store_vectors' AND indexname = 'store_vectors_embedding_idx'",
        )
        assert has_ann == [(0 if kind == "flat" else 1,)]
        assert query_all(dsn, "SELECT count(*) FROM store_vectors") == [(2,)]
    else:
        tables = {r[0] for r in query_all(dsn, "SELECT tablename FROM pg_tables")}
        assert "vector_migrations" not in tables


@pytest.mark.pgvector
@pytest.mark.parametrize(
    ("vector_type", "distance", "ann"),
    [
        ("vector", "cosine", {"kind": "hnsw"}),
        ("halfvec", "cosine", {"kind": "hnsw", "m": 8, "ef_construction": 32}),
        ("halfvec", "l2", {"kind": "ivfflat", "nlist": 7}),
        ("vector", "inner_product", {"kind": "ivfflat"}),
        ("vector", "inner_product", {"kind": "flat"}),
    ],
)
def test_setup_creates_the_same_vector_schema_as_the_official_store(
    db_factory: DatabaseFactory, vector_type: str, distance: str, ann: dict[str, Any]
) -> None:
    config = index_config(
        distance_type=distance, ann_index_config={**ann, "vector_type": vector_type}
    )

    def shape(dsn: str) -> dict[str, Any]:
        columns = query_all(
            dsn,
            "SELECT table_name, column_name, format_type(a.atttypid, a.atttypmod), is_nullable"
            " FROM information_schema.columns c"
            " JOIN pg_attribute a ON a.attrelid = (c.table_schema || '.' || c.table_name)::regclass"
            "   AND a.attname = c.column_name"
            " WHERE c.table_schema = current_schema()"
            "   AND table_name IN ('store', 'store_vectors', 'store_migrations',"
            "                      'vector_migrations')"
            "   AND column_name NOT IN ('ttl_exact_minutes', 'ttl_exact_at')"
            " ORDER BY 1, 2",
        )
        indexes = query_all(
            dsn,
            "SELECT indexname, regexp_replace(indexdef, ' ON \\S+\\.', ' ON ')"
            " FROM pg_indexes WHERE schemaname = current_schema()"
            "   AND tablename IN ('store', 'store_vectors')"
            "   AND indexname NOT IN ('store_value_idx')"
            " ORDER BY 1",
        )
        return {"columns": columns, "indexes": indexes}

    with db_factory.schema() as official_dsn, db_factory.schema() as ours_dsn:
        with open_store("official", official_dsn, index=config):
            pass
        with open_store("ours", ours_dsn, index=config):
            pass
        assert shape(ours_dsn) == shape(official_dsn)
        assert migration_rows(ours_dsn, "vector_migrations") == migration_rows(
            official_dsn, "vector_migrations"
        )


def test_ours_reads_without_refresh_a_database_only_the_official_store_set_up(dsn: str) -> None:
    with open_store("official", dsn) as official:
        put_items(official)
        written = [official.get(ns, key) for ns, key, _ in ITEMS]
        listed = official.search((), limit=100)
    with open_store("ours", dsn, setup=False) as ours:
        assert [ours.get(ns, key, refresh_ttl=False) for ns, key, _ in ITEMS] == written
        assert ours.search((), limit=100, refresh_ttl=False) == listed
        assert ours.list_namespaces(max_depth=1) == [
            ("docs",),
            ("team%a",),
            ("team_a",),
            ("users",),
        ]


def test_ours_asks_for_setup_before_refreshing_reads_on_an_official_only_database(
    dsn: str,
) -> None:
    with open_store("official", dsn) as official:
        put_items(official)
        written = snapshot(official)
    with open_store("ours", dsn, setup=False) as ours:
        # A refreshing read (the default) needs this store's own TTL column: a clear error.
        with pytest.raises(SchemaNotReadyError, match=r"setup\(\)"):
            ours.get(ITEMS[0][0], ITEMS[0][1])
        ours.setup()  # type: ignore[attr-defined]
        assert snapshot(ours) == written
    assert migration_rows(dsn, "store_migrations") == OFFICIAL_STORE_MIGRATIONS


# -- TTL ----------------------------------------------------------------------------------------

NS = ("memories", "u1")


def test_official_ttl_is_refreshed_by_ours_from_ttl_minutes(dsn: str) -> None:
    with open_store("official", dsn) as official, open_store("ours", dsn) as ours:
        official.put(NS, "a", {"v": 1}, ttl=10)
        official.put(NS, "b", {"v": 2}, ttl=10)
        assert query_all(dsn, "SELECT ttl_minutes, ttl_exact_minutes FROM store") == [
            (10, None),
            (10, None),
        ]
        expire_soon(dsn, NS, "a", 30)
        expire_soon(dsn, NS, "b", 30)

        assert ours.get(NS, "a", refresh_ttl=False) is not None
        assert seconds_left(dsn, NS, "a") == pytest.approx(30, abs=5)
        assert ours.get(NS, "a", refresh_ttl=True) is not None
        assert seconds_left(dsn, NS, "a") == pytest.approx(600, abs=5)

        assert [i.key for i in ours.search(NS, filter={"v": 2}, refresh_ttl=True)] == ["b"]
        assert seconds_left(dsn, NS, "b") == pytest.approx(600, abs=5)


def test_ours_ttl_is_refreshed_by_the_official_store(dsn: str) -> None:
    with open_store("ours", dsn) as ours, open_store("official", dsn) as official:
        ours.put(NS, "whole", {"v": 1}, ttl=10)
        ours.put(NS, "half", {"v": 2}, ttl=0.5)
        rows = query_all(
            dsn, "SELECT key, ttl_minutes, ttl_exact_minutes FROM store ORDER BY key DESC"
        )
        assert rows[0] == ("whole", 10, 10.0)
        assert rows[1][0] == "half"
        assert rows[1][2] == 0.5
        assert seconds_left(dsn, NS, "half") == pytest.approx(30, abs=5)
        for key in ("whole", "half"):
            expire_soon(dsn, NS, key, 5)

        assert official.get(NS, "whole", refresh_ttl=True) is not None
        assert seconds_left(dsn, NS, "whole") == pytest.approx(600, abs=5)
        # The official store only knows whole minutes: the item lives on, for at most one.
        assert official.get(NS, "half", refresh_ttl=True) is not None
        left = seconds_left(dsn, NS, "half")
        assert left is not None
        assert 0 < left <= 61


def test_ours_refreshes_its_own_fractional_ttl_exactly(dsn: str) -> None:
    with open_store("ours", dsn) as ours:
        ours.put(NS, "half", {"v": 1}, ttl=0.5)
        expire_soon(dsn, NS, "half", 5)
        assert ours.get(NS, "half", refresh_ttl=True) is not None
        assert seconds_left(dsn, NS, "half") == pytest.approx(30, abs=5)


@pytest.mark.parametrize(
    ("ours_ttl", "official_ttl"),
    [
        pytest.param(0.5, 10, id="new-ttl-differs-from-the-ceiling"),
        pytest.param(
            0.5,
            1,
            id="new-ttl-equals-the-ceiling",
        ),
    ],
)
def test_official_overwrite_of_a_ttl_item_wins_over_ours_exact_ttl(
    dsn: str, ours_ttl: float, official_ttl: int
) -> None:
    with open_store("ours", dsn) as ours, open_store("official", dsn) as official:
        ours.put(NS, "a", {"v": 1}, ttl=ours_ttl)
        official.put(NS, "a", {"v": 2}, ttl=official_ttl)
        expire_soon(dsn, NS, "a", 5)
        assert ours.get(NS, "a", refresh_ttl=True) is not None
        assert seconds_left(dsn, NS, "a") == pytest.approx(official_ttl * 60, abs=5)


def test_official_overwrite_without_ttl_makes_the_item_permanent_for_ours(dsn: str) -> None:
    with open_store("ours", dsn) as ours, open_store("official", dsn) as official:
        ours.put(NS, "a", {"v": 1}, ttl=0.5)
        official.put(NS, "a", {"v": 2}, ttl=None)
        assert seconds_left(dsn, NS, "a") is None
        item = ours.get(NS, "a", refresh_ttl=True)
        assert item is not None
        assert item.value == {"v": 2}
        assert seconds_left(dsn, NS, "a") is None
        assert ours.sweep_ttl() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(("writer", "sweeper"), DIRECTIONS)
def test_expired_items_of_one_are_hidden_and_swept_by_the_other(
    dsn: str, writer: str, sweeper: str
) -> None:
    with open_store(writer, dsn) as w, open_store(sweeper, dsn) as s:
        w.put(NS, "expired", {"v": 1}, ttl=10)
        w.put(NS, "alive", {"v": 2}, ttl=10)
        w.put(NS, "forever", {"v": 3})
        execute(
            dsn, "UPDATE store SET expires_at = now() - interval '1 second' WHERE key = 'expired'"
        )
        ours = w if writer == "ours" else s
        # Ours never returns an expired item, swept or not.
        assert ours.get(NS, "expired") is None
        assert sorted(i.key for i in ours.search(NS)) == ["alive", "forever"]
        assert s.sweep_ttl() == 1  # type: ignore[attr-defined]
    assert sorted(r[0] for r in query_all(dsn, "SELECT key FROM store")) == ["alive", "forever"]


async def test_async_ours_refreshes_and_sweeps_official_ttl_items(dsn: str) -> None:
    async with aopen_store("official", dsn) as official, aopen_store("ours", dsn) as ours:
        await official.aput(NS, "a", {"v": 1}, ttl=10)
        await official.aput(NS, "gone", {"v": 2}, ttl=10)
        expire_soon(dsn, NS, "a", 30)
        execute(dsn, "UPDATE store SET expires_at = now() - interval '1 second' WHERE key = 'gone'")
        assert await ours.aget(NS, "gone") is None
        item = await ours.aget(NS, "a", refresh_ttl=True)
        assert item is not None
        assert item.value == {"v": 1}
        assert seconds_left(dsn, NS, "a") == pytest.approx(600, abs=5)
        assert await ours.sweep_ttl() == 1  # type: ignore[attr-defined]
        assert [i.key for i in await official.asearch(NS)] == ["a"]


# -- vectors (pgvector) -----------------------------------------------------------------------

DOCS: list[tuple[str, str]] = [
    ("apple", "apple pie with cinnamon"),
    ("banana", "banana bread"),
    ("cherry", "cherry tart"),
    ("kiwi", "kiwi and lime sorbet"),
    ("zucchini", "zucchini fritters"),
]


def scored(results: Sequence[SearchItem]) -> list[tuple[str, float]]:
    return [(r.key, round(float(r.score or 0.0), 6)) for r in results]


def vector_rows(dsn: str, prefix: str) -> dict[tuple[str, str], str]:
    rows = query_all(
        dsn,
        "SELECT key, field_name, embedding::text FROM store_vectors WHERE prefix = %s",
        (prefix,),
    )
    return {(key, field): text for key, field, text in rows}


@pytest.mark.pgvector
@pytest.mark.parametrize(("writer", "reader"), DIRECTIONS)
@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
def test_vectors_written_by_one_are_found_by_the_others_semantic_search(
    dsn: str, writer: str, reader: str, distance: str
) -> None:
    config = index_config(distance_type=distance)
    with open_store(writer, dsn, index=config) as w, open_store(reader, dsn, index=config) as r:
        for key, text in DOCS:
            w.put(("docs",), key, {"text": text})
        assert len(vector_rows(dsn, "docs")) == len(DOCS)
        for query in ("apple pie", "lime and kiwi", "bread"):
            found = r.search(("docs",), query=query, limit=3)
            assert scored(found) == scored(w.search(("docs",), query=query, limit=3))
            assert len(found) == 3
            scores = [float(f.score or 0.0) for f in found]
            assert scores == sorted(scores, reverse=True)
        best = r.search(("docs",), query="apple pie with cinnamon", limit=1)
        if distance != "inner_product":  # the nearest by distance: the text itself
            assert [b.key for b in best] == ["apple"]
        if distance == "cosine":
            assert best[0].score == pytest.approx(1.0)

        # A delete by the reader takes the writer's vectors with it.
        r.delete(("docs",), "apple")
        assert ("apple", "text") not in vector_rows(dsn, "docs")
        assert "apple" not in [i.key for i in w.search(("docs",), query="apple pie")]


@pytest.mark.pgvector
def test_multi_field_indexes_name_fields_as_the_official_store_does(dsn: str) -> None:
    config = index_config(fields=["title", "tags[*]", "meta.summary"])
    values: dict[str, dict[str, Any]] = {
        "many": {"title": "pie", "tags": ["apple", "sweet", "oven"], "meta": {"summary": "a pie"}},
        "one": {"title": "bread", "tags": ["banana"], "meta": {"summary": "a loaf"}},
        "none": {"title": "tart", "other": "unindexed"},
    }
    with open_store("official", dsn, index=config) as official:
        for key, value in values.items():
            official.put(("official",), key, value)
        official.put(("official",), "chosen", values["many"], index=["tags[*]", "title"])
    with open_store("ours", dsn, index=config) as ours:
        for key, value in values.items():
            ours.put(("ours",), key, value)
        ours.put(("ours",), "chosen", values["many"], index=["tags[*]", "title"])

        expected = vector_rows(dsn, "official")
        assert {field for key, field in expected if key == "many"} == {
            "title",
            "tags[*].0",
            "tags[*].1",
            "tags[*].2",
            "meta.summary",
        }
        assert vector_rows(dsn, "ours") == expected

        results = {
            (i.namespace[0], i.key): i.score for i in ours.search((), query="apple pie", limit=20)
        }
        for key in values:
            assert results[("ours", key)] == pytest.approx(results[("official", key)])


@pytest.mark.pgvector
@pytest.mark.parametrize(("writer", "reader"), DIRECTIONS)
async def test_async_vectors_written_by_one_are_found_by_the_other(
    dsn: str, writer: str, reader: str
) -> None:
    config = index_config()
    async with (
        aopen_store(writer, dsn, index=config) as w,
        aopen_store(reader, dsn, index=config) as r,
    ):
        for key, text in DOCS:
            await w.aput(("docs",), key, {"text": text})
        found = await r.asearch(("docs",), query="cherry tart", limit=2)
        assert [f.key for f in found][:1] == ["cherry"]
        assert found[0].score == pytest.approx(1.0)
        assert scored(found) == scored(await w.asearch(("docs",), query="cherry tart", limit=2))
        assert all(math.isfinite(float(f.score or 0)) for f in found)


def test_an_exact_ttl_written_before_its_marker_column_existed_is_still_refreshed_exactly(
    dsn: str,
) -> None:
    with open_store("ours", dsn) as ours:
        ours.put(NS, "a", {"v": 1}, ttl=0.5)
        with psycopg.connect(dsn, autocommit=True) as conn:  # as a row from before the column
            conn.execute("UPDATE store SET ttl_exact_at = NULL")
        expire_soon(dsn, NS, "a", 5)
        assert ours.get(NS, "a", refresh_ttl=True) is not None
        assert seconds_left(dsn, NS, "a") == pytest.approx(30, abs=5)
