"""Full-text search: without pgvector and without an embedding model (`index={"text": ...}`).

The reference for what matches and how it ranks is PostgreSQL's own `to_tsvector` of each
item's text, queried here item by item, never the store's index expression; the filter part
is checked against LangGraph's `InMemoryStore`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres import PostgresStore as OfficialStore
from psycopg.rows import dict_row

from store import InvalidIndexConfigError, PostgresStore
from store.errors import InvalidValueError

TEXT_INDEX: dict[str, Any] = {"text": {"language": "english", "match": "all"}, "fields": ["text"]}

DOCS: list[tuple[str, str, dict[str, Any]]] = [
    ("cats", "The cats were running through the garden", {"kind": "pet", "n": 1}),
    ("dogs", "Dogs run faster than cats in a race", {"kind": "pet", "n": 2}),
    ("garden", "Gardening notes: roses need sun and water", {"kind": "plant", "n": 3}),
    ("race", "The race was run in the rain; the runners ran home", {"kind": "sport", "n": 4}),
    ("mouse", "A mouse in the house", {"kind": "pet", "n": 5}),
    ("tea", "Green tea with lemon, no sugar", {"kind": "food", "n": 6}),
]
QUERIES = ["run", "cats", "garden", '"the race"', "run -cats", "cat OR tea", "mice"]


@contextmanager
def text_store(dsn: str, index: dict[str, Any] | None = None) -> Iterator[PostgresStore]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=index or TEXT_INDEX)
        store.setup()
        yield store


def fill(store: PostgresStore | InMemoryStore) -> None:
    for key, text, extra in DOCS:
        store.put(("docs",), key, {"text": text, **extra})


def reference(
    dsn: str, query: str, docs: Sequence[tuple[str, str, Any]] = DOCS
) -> list[tuple[str, float]]:
    """Matching keys of `docs` (key, text, ...), best first (ties by key), by PostgreSQL on
    each item's text alone."""
    found = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for key, text, _ in docs:
            row = conn.execute(
                "SELECT to_tsvector('english', %s) @@ websearch_to_tsquery('english', %s),"
                " ts_rank(to_tsvector('english', %s), websearch_to_tsquery('english', %s))",
                (text, query, text, query),
            ).fetchone()
            assert row is not None
            if row[0]:
                found.append((key, float(row[1])))
    return sorted(found, key=lambda ks: (-ks[1], ks[0]))


def keys(results: Sequence[Any]) -> list[str]:
    return [r.key for r in results]


@pytest.mark.parametrize("query", QUERIES)
def test_text_search_returns_the_matching_items_best_ts_rank_first(dsn: str, query: str) -> None:
    with text_store(dsn) as store:
        fill(store)
        found = store.search(("docs",), query=query, limit=20)
        expected = reference(dsn, query)
        assert keys(found) == [k for k, _ in expected]
        assert [r.score for r in found] == pytest.approx([s for _, s in expected], rel=1e-6)


def test_text_search_stems_words_in_the_configured_language(dsn: str) -> None:
    with text_store(dsn) as store:
        fill(store)
        assert set(keys(store.search(("docs",), query="running"))) == {"cats", "dogs", "race"}


def test_text_search_reads_only_the_indexed_fields(dsn: str) -> None:
    with text_store(dsn) as store:
        store.put(("docs",), "a", {"text": "apples", "note": "pears"})
        assert keys(store.search(("docs",), query="pears")) == []
        assert keys(store.search(("docs",), query="apples")) == ["a"]


def test_text_search_without_fields_reads_every_string_of_the_value_but_no_key(dsn: str) -> None:
    with text_store(dsn, {"text": {"match": "all"}}) as store:
        store.put(("docs",), "a", {"deep": {"list": ["one", {"word": "pears"}]}, "n": 7})
        assert keys(store.search(("docs",), query="pears")) == ["a"]
        assert keys(store.search(("docs",), query="deep")) == []


def test_text_search_follows_list_paths_in_fields(dsn: str) -> None:
    index = {"text": {"match": "all"}, "fields": ["tags[*].name", "title[0]"]}
    with text_store(dsn, index) as store:
        store.put(("docs",), "a", {"tags": [{"name": "alpha"}, {"name": "beta"}], "title": ["x"]})
        store.put(("docs",), "b", {"tags": "gamma", "title": ["first", "second"]})
        assert keys(store.search(("docs",), query="beta")) == ["a"]
        assert keys(store.search(("docs",), query="first")) == ["b"]
        assert keys(store.search(("docs",), query="second")) == []


@pytest.mark.parametrize(
    "query", ['"unterminated', "((", "a & | ! b", "':*", "\\", "or or or", "-", "the and of"]
)
def test_text_search_accepts_any_user_text_without_error(dsn: str, query: str) -> None:
    with text_store(dsn) as store:
        fill(store)
        found = store.search(("docs",), query=query)
        assert keys(found) == [k for k, _ in reference(dsn, query)]


def test_text_search_refuses_a_query_holding_nul_with_a_typed_error(dsn: str) -> None:
    with text_store(dsn) as store, pytest.raises(InvalidValueError, match="NUL"):
        store.search(("docs",), query="a\x00b")


@pytest.mark.parametrize(
    "filter",
    [{"kind": "pet"}, {"n": {"$gt": 2}}, {"kind": {"$ne": "pet"}}, {"kind": "none"}],
)
def test_text_search_keeps_only_what_the_filter_keeps_as_in_memory_store_does(
    dsn: str, filter: dict[str, Any]
) -> None:
    memory = InMemoryStore()
    fill(memory)
    kept = set(keys(memory.search(("docs",), filter=filter, limit=100)))
    with text_store(dsn) as store:
        fill(store)
        for query in QUERIES:
            found = store.search(("docs",), query=query, filter=filter, limit=100)
            assert keys(found) == [k for k, _ in reference(dsn, query) if k in kept]


def test_text_search_pages_with_limit_and_offset_through_one_ranking(dsn: str) -> None:
    with text_store(dsn) as store:
        fill(store)
        whole = keys(store.search(("docs",), query="run OR cats OR tea", limit=20))
        pages = [
            keys(store.search(("docs",), query="run OR cats OR tea", limit=2, offset=o))
            for o in range(0, 6, 2)
        ]
        assert [k for page in pages for k in page] == whole


def test_text_search_stays_within_the_namespace_prefix(dsn: str) -> None:
    with text_store(dsn) as store:
        store.put(("a", "x"), "1", {"text": "shared words"})
        store.put(("b",), "2", {"text": "shared words"})
        assert keys(store.search(("a",), query="shared")) == ["1"]


def test_an_empty_query_lists_items_unranked(dsn: str) -> None:
    with text_store(dsn) as store:
        fill(store)
        found = store.search(("docs",), query="", limit=20)
        assert len(found) == len(DOCS)
        assert all(r.score is None for r in found)


@pytest.mark.nocitus("the official store cannot write to distributed tables")
def test_the_official_store_reads_and_writes_beside_the_text_column(dsn: str) -> None:
    with text_store(dsn) as store:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row) as c:
            official = OfficialStore(c)
            official.put(("docs",), "o", {"text": "written by the official store"})
            assert official.get(("docs",), "o") is not None
            store.put(("docs",), "ours", {"text": "written by this store"})
            assert {i.key for i in official.search(("docs",), limit=5)} == {"o", "ours"}
        assert keys(store.search(("docs",), query="official")) == ["o"]


def test_setup_adds_no_row_to_the_official_migration_tables(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresStore(conn).setup()
        before = conn.execute("SELECT array_agg(v ORDER BY v) FROM store_migrations").fetchone()
    with text_store(dsn):
        pass
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = conn.execute("SELECT array_agg(v ORDER BY v) FROM store_migrations").fetchone()
        vectors = conn.execute("SELECT to_regclass('vector_migrations')").fetchone()
    assert after == before
    assert vectors == (None,)


@pytest.mark.nocitus("reads the plan of a local table; Citus plans each shard")
def test_text_search_is_served_by_the_text_index(dsn: str) -> None:
    with text_store(dsn) as store:
        for i in range(300):
            store.put(("docs",), f"k{i}", {"text": f"filler number {i}"})
        store.put(("docs",), "needle", {"text": "a needle"})
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE store")
            conn.execute("SET enable_seqscan = off")
            index = store.text_index
            assert index is not None
            plan = conn.execute(
                "EXPLAIN SELECT key FROM store WHERE "
                + index.column("store").as_string(conn)
                + " @@ websearch_to_tsquery('english'::regconfig, 'needle')"
            ).fetchall()
        assert index.index_name in " ".join(r[0] for r in plan)
        assert keys(store.search(("docs",), query="needle")) == ["needle"]


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_a_mode_whose_index_is_missing_is_refused_with_a_typed_error(dsn: str, mode: str) -> None:
    with text_store(dsn) as store, pytest.raises(InvalidIndexConfigError, match="vector index"):
        store.search(("docs",), query="x", mode=mode)  # type: ignore[arg-type]


def test_an_unknown_mode_is_refused_with_a_typed_error(dsn: str) -> None:
    with text_store(dsn) as store, pytest.raises(InvalidValueError, match="search mode"):
        store.search(("docs",), query="x", mode="fuzzy")  # type: ignore[arg-type]


async def test_the_async_store_searches_text_with_a_mode(dsn: str) -> None:
    from store import AsyncPostgresStore

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        store = AsyncPostgresStore(conn, index=TEXT_INDEX)
        await store.setup()
        await store.aput(("docs",), "a", {"text": "async words"})
        found = await store.asearch(("docs",), query="word", mode="text")
        assert keys(found) == ["a"]


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"text": "english"}, "must be a dict"),
        ({"text": {"language": "english; drop"}}, "text search configuration"),
        ({"text": {"lang": "english"}}, "unknown keys"),
        ({"text": {"match": "some"}}, "all or any"),
        ({"text": {}, "fields": ["a.{b,c}"]}, "not supported"),
        ({"text": {}, "hybrid": {"k": -1}}, "non-negative"),
        ({"text": {}, "hybrid": {"candidates": 0}}, "positive int"),
        ({"text": {}, "hybrid": {"text_weight": "1"}}, "must be a number"),
        ({"text": {}, "hybrid": {"depth": 3}}, "unknown keys"),
    ],
)
def test_a_bad_text_index_config_is_refused_when_the_store_is_made(
    index: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidIndexConfigError, match=message):
        PostgresStore(None, index=index)  # type: ignore[arg-type]


def test_a_language_the_server_lacks_is_refused_at_setup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index={"text": {"language": "klingon"}})
        with pytest.raises(InvalidIndexConfigError, match="klingon"):
            store.setup()


def test_text_match_any_is_the_default_and_finds_items_with_any_word(dsn: str) -> None:
    index = {"text": {"language": "english"}, "fields": ["text"]}
    with text_store(dsn, index) as store:
        fill(store)
        found = store.search(("docs",), query="running cats & (lemon", limit=20)
        expected = reference(dsn, "running or cats or lemon")
        assert keys(found) == [k for k, _ in expected]
        assert [r.score for r in found] == pytest.approx([s for _, s in expected], rel=1e-6)


def test_text_match_all_needs_every_word(dsn: str) -> None:
    with text_store(dsn) as store:
        fill(store)
        assert keys(store.search(("docs",), query="running cats lemon")) == []


@pytest.mark.parametrize("query", ['"unterminated', "((", "a & | ! b", "':*", "\\", "-", "the"])
def test_text_match_any_accepts_any_user_text_without_error(dsn: str, query: str) -> None:
    with text_store(dsn, {"text": {}, "fields": ["text"]}) as store:
        fill(store)
        assert {r.key for r in store.search(("docs",), query=query)} <= {k for k, _, _ in DOCS}
