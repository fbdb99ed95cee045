"""Hybrid search: reciprocal rank fusion of the full-text and the vector ranking.

The expected order is computed here by brute force: the text list from PostgreSQL's
`to_tsvector` of each item alone, the vector list from the deterministic letter embedding in
Python, each cut to the fusion depth, then fused by the documented formula.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from store import InvalidIndexConfigError, PostgresStore
from tests.store.test_text_search import reference
from tests.store.test_vector_search import RecordingEmbeddings, expected_score, letter_vector

DOCS: list[tuple[str, str, str]] = [
    ("apple", "apple pie with cinnamon and a crust", "food"),
    ("banana", "banana bread, warm", "food"),
    ("crust", "the crust of the earth is rock", "geo"),
    ("pie", "pie charts show parts of a whole", "chart"),
    ("cinnamon", "cinnamon rolls", "food"),
    ("quartz", "quartz crystals in granite", "geo"),
    ("zebra", "zebra crossing", "road"),
    ("lime", "lime sorbet and kiwi", "food"),
]
QUERIES = ["apple pie", "crust", "cinnamon bread", "rock crystals", "nothing matches xyzzy"]


def index(**hybrid: Any) -> dict[str, Any]:
    return {
        "dims": 32,
        "embed": RecordingEmbeddings(),
        "fields": ["text"],
        "ann_index_config": {"kind": "flat"},
        "text": {"language": "english", "match": "all"},
        "hybrid": hybrid,
    }


@contextmanager
def hybrid_store(dsn: str, **hybrid: Any) -> Iterator[PostgresStore]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=index(**hybrid))
        store.setup()
        for key, text, kind in DOCS:
            store.put(("docs",), key, {"text": text, "kind": kind})
        yield store


def text_list(dsn: str, query: str, keep: set[str]) -> list[str]:
    return [key for key, _ in reference(dsn, query, DOCS) if key in keep]


def vector_list(query: str, keep: set[str]) -> list[str]:
    q = letter_vector(query)
    scored = [(key, expected_score("cosine", letter_vector(text), q)) for key, text, _ in DOCS]
    scored = [(k, s) for k, s in scored if k in keep]
    distinct = [round(s, 5) for _, s in scored]
    assert len(set(distinct)) == len(distinct), f"test data ties for {query!r}"
    return [k for k, _ in sorted(scored, key=lambda ks: -ks[1])]


def fused(lists: list[tuple[list[str], float]], k: float, depth: int) -> list[tuple[str, float]]:
    scores: dict[str, float] = {}
    for ranked, weight in lists:
        for place, key in enumerate(ranked[:depth], start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + place)
    return sorted(scores.items(), key=lambda ks: (-ks[1], ks[0]))


def expected(
    dsn: str,
    query: str,
    *,
    k: float = 60,
    tw: float = 1,
    vw: float = 1,
    depth: int = 100,
    keep: set[str] | None = None,
) -> list[tuple[str, float]]:
    keep = keep if keep is not None else {key for key, _, _ in DOCS}
    lists = [(text_list(dsn, query, keep), tw), (vector_list(query, keep), vw)]
    return fused(lists, k, depth)


def assert_ranked(found: list[Any], want: list[tuple[str, float]]) -> None:
    assert [r.key for r in found] == [k for k, _ in want]
    assert [r.score for r in found] == pytest.approx([s for _, s in want], rel=1e-9)


@pytest.mark.pgvector
@pytest.mark.parametrize("query", QUERIES)
def test_hybrid_search_is_the_rrf_of_the_text_and_vector_rankings(dsn: str, query: str) -> None:
    with hybrid_store(dsn) as store:
        found = store.search(("docs",), query=query, limit=len(DOCS))
        assert_ranked(found, expected(dsn, query))


@pytest.mark.pgvector
@pytest.mark.parametrize(("k", "tw", "vw"), [(0, 1, 1), (1, 3, 1), (60, 0.2, 2.5), (10, 1, 0)])
def test_hybrid_search_uses_the_configured_k_and_weights(
    dsn: str, k: float, tw: float, vw: float
) -> None:
    with hybrid_store(dsn, k=k, text_weight=tw, vector_weight=vw) as store:
        for query in QUERIES:
            found = store.search(("docs",), query=query, limit=len(DOCS))
            assert_ranked(found, expected(dsn, query, k=k, tw=tw, vw=vw))


@pytest.mark.pgvector
def test_hybrid_search_fuses_only_the_best_candidates_of_each_list(dsn: str) -> None:
    with hybrid_store(dsn, candidates=2) as store:
        for query in QUERIES:
            found = store.search(("docs",), query=query, limit=2)
            assert_ranked(found, expected(dsn, query, depth=2)[:2])


@pytest.mark.pgvector
def test_hybrid_search_applies_the_filter_to_both_lists(dsn: str) -> None:
    keep = {key for key, _, kind in DOCS if kind == "food"}
    with hybrid_store(dsn) as store:
        for query in QUERIES:
            found = store.search(("docs",), query=query, filter={"kind": "food"}, limit=20)
            assert_ranked(found, expected(dsn, query, keep=keep))


@pytest.mark.pgvector
def test_hybrid_search_pages_through_one_fused_ranking(dsn: str) -> None:
    with hybrid_store(dsn) as store:
        whole = [r.key for r in store.search(("docs",), query="apple pie", limit=8)]
        pages = [
            r.key
            for offset in range(0, 8, 3)
            for r in store.search(("docs",), query="apple pie", limit=3, offset=offset)
        ]
        assert pages == whole


@pytest.mark.pgvector
def test_the_mode_chooses_one_ranking_for_a_call(dsn: str) -> None:
    with hybrid_store(dsn) as store:
        keep = {key for key, _, _ in DOCS}
        text = store.search(("docs",), query="crust", limit=8, mode="text")
        assert [r.key for r in text] == text_list(dsn, "crust", keep)
        vector = store.search(("docs",), query="crust", limit=8, mode="vector")
        assert [r.key for r in vector] == vector_list("crust", keep)
        assert all(r.score is not None and -1 <= r.score <= 1 for r in vector)


@pytest.mark.pgvector
def test_a_hybrid_score_is_the_sum_of_weight_over_k_plus_place(dsn: str) -> None:
    with hybrid_store(dsn) as store:
        best = store.search(("docs",), query="apple pie", limit=1)[0]
        # apple is first in both lists (checked by the reference): 1/61 + 1/61
        assert best.key == "apple"
        assert best.score == pytest.approx(2 / 61)
        assert math.isfinite(best.score or math.nan)


# -- how far the ANN index searches ------------------------------------------------------------


def tuned_index(kind: str, ann_search: dict[str, Any]) -> dict[str, Any]:
    return {
        "dims": 32,
        "embed": RecordingEmbeddings(),
        "fields": ["text"],
        "ann_index_config": {"kind": kind},
        "ann_search": ann_search,
    }


@pytest.mark.pgvector
@pytest.mark.parametrize(
    ("kind", "ann_search"),
    [
        ("hnsw", {"ef_search": 100}),
        ("hnsw", {"ef_search": 1, "iterative_scan": "relaxed_order"}),
        ("hnsw", {"iterative_scan": "strict_order"}),
        ("ivfflat", {"probes": 3, "iterative_scan": "relaxed_order"}),
    ],
)
def test_ann_search_settings_keep_the_exact_ranking(
    dsn: str, kind: str, ann_search: dict[str, Any]
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=tuned_index(kind, ann_search))
        store.setup()
        for key, text, kind_ in DOCS:
            store.put(("docs",), key, {"text": text, "kind": kind_})
        keep = {key for key, _, _ in DOCS}
        for query in QUERIES:
            found = store.search(("docs",), query=query, limit=len(DOCS))
            assert [r.key for r in found] == vector_list(query, keep)


@pytest.mark.pgvector
def test_ann_search_settings_end_with_the_search_statement(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=tuned_index("hnsw", {"ef_search": 321}))
        store.setup()
        store.put(("docs",), "a", {"text": "apple"})
        assert [r.key for r in store.search(("docs",), query="apple")] == ["a"]
        after = conn.execute("SELECT current_setting('hnsw.ef_search', true)").fetchone()
        assert after == ("40",)  # pgvector's default, as before the search


@pytest.mark.parametrize(
    ("ann_search", "message"),
    [
        ({"ef_search": 0}, "from 1 to 1000"),
        ({"probes": True}, "from 1 to 32768"),
        ({"iterative_scan": "on"}, "must be one of"),
        ({"ef": 10}, "unknown keys"),
        ("fast", "must be a dict"),
    ],
)
def test_bad_ann_search_settings_are_refused_when_the_store_is_made(
    ann_search: Any, message: str
) -> None:
    with pytest.raises(InvalidIndexConfigError, match=message):
        PostgresStore(None, index=tuned_index("hnsw", ann_search))  # type: ignore[arg-type]


@pytest.mark.pgvector
def test_ann_search_settings_chosen_for_one_call_keep_the_exact_ranking(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index=tuned_index("hnsw", {"ef_search": 1}))
        store.setup()
        for key, text, kind_ in DOCS:
            store.put(("docs",), key, {"text": text, "kind": kind_})
        keep = {key for key, _, _ in DOCS}
        tuned = {"ef_search": 400, "iterative_scan": "relaxed_order"}
        found = store.search(("docs",), query="crust", limit=len(DOCS), ann_search=tuned)
        assert [r.key for r in found] == vector_list("crust", keep)


def test_ann_search_for_one_call_is_refused_without_a_vector_index(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn, index={"text": {}})
        with pytest.raises(InvalidIndexConfigError, match="has none"):
            store.search(("docs",), query="x", ann_search={"ef_search": 100})
