"""Filters give exactly what LangGraph's InMemoryStore gives on the same data.

A broad table of filters runs on both stores; where the in-memory store raises (a range
operator on a missing or non-numeric value), ours returns no match instead, and that case is
compared as "no match".
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore

from store import InvalidFilterError, PostgresStore

DATA: dict[str, dict[str, Any]] = {
    "a": {"n": 5, "s": "x", "flag": True, "tags": ["a", "b"], "meta": {"k": 1, "deep": {"z": "y"}}},
    "b": {"n": 10, "s": "y", "flag": False, "tags": ["b"], "meta": {"k": 2}},
    "c": {"n": 100, "s": "x", "tags": [], "meta": {"k": 1, "other": None}},
    "d": {"n": 2.5, "s": None, "meta": {}},
    "e": {"n": "42", "s": "z", "nested": [{"x": 1}, {"x": 2}]},
    "f": {"s": "x", "n": -3},
    "g": {"n": 0, "list": [1, 2, 3], "meta": {"k": 1, "deep": {"z": "w"}}},
}

FILTERS: list[dict[str, Any]] = [
    {"s": "x"},
    {"s": None},
    {"n": 5},
    {"n": 2.5},
    {"n": {"$gt": 5}},
    {"n": {"$gte": 5}},
    {"n": {"$lt": 5}},
    {"n": {"$lte": 5}},
    {"n": {"$gt": 3, "$lt": 50}},
    {"n": {"$eq": 10}},
    {"n": {"$ne": 10}},
    {"s": {"$ne": "x"}},
    {"missing": {"$ne": 1}},
    {"missing": None},
    {"flag": True},
    {"flag": {"$ne": True}},
    {"tags": ["a", "b"]},
    {"tags": ["b"]},
    {"tags": []},
    {"meta": {"k": 1}},
    {"meta": {"k": 1, "deep": {"z": "y"}}},
    {"meta": {}},
    {"meta": {"other": None}},
    {"meta": {"missing": None}},
    {"nested": [{"x": 1}, {"x": 2}]},
    {"nested": [{"x": 1}]},
    {"list": [1, 2, 3]},
    {"s": "x", "n": {"$gt": 0}},
    {"s": {"$eq": None}},
    {"meta": {"deep": {"z": {"$ne": "y"}}}},
]

EXTENSIONS: list[tuple[dict[str, Any], set[str]]] = [
    ({"s": {"$in": ["x", "z"]}}, {"a", "c", "e", "f"}),
    ({"s": {"$nin": ["x", "z"]}}, {"b", "d", "g"}),
    ({"tags": {"$exists": True}}, {"a", "b", "c"}),
    ({"tags": {"$exists": False}}, {"d", "e", "f", "g"}),
    ({"n": {"$in": [5, 100]}}, {"a", "c"}),
]


def _memory_keys(memory: InMemoryStore, filter: dict[str, Any]) -> set[str] | None:
    try:
        return {i.key for i in memory.search(("d",), filter=filter, limit=100)}
    except (TypeError, ValueError):
        return None  # the in-memory store cannot compare these values


@pytest.fixture
def both(plain_store: PostgresStore) -> tuple[PostgresStore, InMemoryStore]:
    memory = InMemoryStore()
    for key, value in DATA.items():
        plain_store.put(("d",), key, value)
        memory.put(("d",), key, value)
    return plain_store, memory


@pytest.mark.parametrize("filter", FILTERS, ids=[repr(f) for f in FILTERS])
def test_filter_matches_the_in_memory_store(
    both: tuple[PostgresStore, InMemoryStore], filter: dict[str, Any]
) -> None:
    ours, memory = both
    expected = _memory_keys(memory, filter)
    got = {i.key for i in ours.search(("d",), filter=filter, limit=100)}
    if expected is None:
        # The in-memory store raised on some item; ours never matches what it cannot compare.
        comparable = {k for k, v in DATA.items() if _memory_keys_single(memory, k, filter)}
        assert got == comparable
    else:
        assert got == expected


def _memory_keys_single(memory: InMemoryStore, key: str, filter: dict[str, Any]) -> bool:
    single = InMemoryStore()
    single.put(("d",), key, DATA[key])
    try:
        return bool(single.search(("d",), filter=filter))
    except (TypeError, ValueError):
        return False


def test_numeric_ranges_compare_numbers_not_text(plain_store: PostgresStore) -> None:
    for n in (5, 10, 100, 9):
        plain_store.put(("r",), str(n), {"n": n})
    found = {i.key for i in plain_store.search(("r",), filter={"n": {"$gt": 5}})}
    assert found == {"9", "10", "100"}


@pytest.mark.parametrize(("filter", "expected"), EXTENSIONS, ids=[repr(f) for f, _ in EXTENSIONS])
def test_documented_extensions(
    both: tuple[PostgresStore, InMemoryStore], filter: dict[str, Any], expected: set[str]
) -> None:
    ours, _ = both
    assert {i.key for i in ours.search(("d",), filter=filter, limit=100)} == expected


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"n": {"$regex": "x"}}, "unknown operator '\\$regex'"),
        ({"n": {"$gt": "abc"}}, "is not one"),
        ({"n": {"$in": 5}}, "takes a list"),
        ({"n": {"$exists": "yes"}}, "takes true or false"),
        ({"n": object()}, "not JSON-serialisable"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_problem(
    plain_store: PostgresStore, filter: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        plain_store.search(("d",), filter=filter)


def test_sql_looking_filter_keys_are_only_data(plain_store: PostgresStore) -> None:
    key = "x'); DROP TABLE store; --"
    plain_store.put(("d",), "k", {key: 1})
    assert [i.key for i in plain_store.search(("d",), filter={key: 1})] == ["k"]
    assert [i.key for i in plain_store.search(("d",), filter={key: {"$gte": 1}})] == ["k"]


def test_every_filter_in_one_batch_gives_what_it_gives_alone(
    plain_store: PostgresStore,
) -> None:
    # Searches whose filters share a shape are answered together, their values in arrays:
    # each must still get exactly its own answer.
    from langgraph.store.base import SearchOp

    for key, value in DATA.items():
        plain_store.put(("d",), key, value)
    filters = [*FILTERS, *(f for f, _ in EXTENSIONS), {"s": {"$in": ["x", "y", "z"]}}]
    ops = [SearchOp(("d",), filter=f, limit=100) for f in filters]
    together = plain_store.batch(ops)
    for filter, found in zip(filters, together, strict=True):
        alone = plain_store.search(("d",), filter=filter, limit=100)
        assert [i.key for i in found] == [i.key for i in alone], filter
