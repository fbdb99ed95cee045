"""Bad input to the store: a typed error naming the problem, and nothing stored."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from langgraph.store.base import PutOp

from store import InvalidNamespaceError, InvalidValueError, PostgresStore


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM store").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("namespace", "error", "message"),
    [
        ((), InvalidNamespaceError, "cannot be empty"),
        (("a.b",), InvalidNamespaceError, "cannot contain periods"),
        (("langgraph", "x"), InvalidNamespaceError, 'cannot be "langgraph"'),
        (("",), InvalidNamespaceError, "cannot be empty strings"),
        (("a\x00",), InvalidNamespaceError, "NUL"),
        ((1,), InvalidNamespaceError, "must be strings"),
    ],
)
def test_a_bad_namespace_is_refused(
    plain_store: PostgresStore, dsn: str, namespace: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        plain_store.batch([PutOp(namespace, "k", {"v": 1}), PutOp(("ok",), "k", {"v": 1})])
    assert _count(dsn) == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("k", {"obj": object()}, "not JSON-serialisable"),
        ("k", {"text": "nul\x00here"}, "NUL character"),
        ("k", ["not", "a", "dict"], "must be a dict"),
        ("k\x00", {"v": 1}, "key contains a NUL"),
        ("x" * 2000, {"v": 1}, "at most 1024"),
        ("k", {"f": float("nan")}, "not JSON-serialisable"),
    ],
)
def test_a_bad_item_is_refused_and_the_batch_stores_nothing(
    plain_store: PostgresStore, dsn: str, key: str, value: Any, message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        plain_store.batch([PutOp(("ok",), "first", {"v": 1}), PutOp(("ns",), key, value)])
    assert _count(dsn) == 0


@pytest.mark.parametrize("ttl", [-1, 0, float("inf"), "5"])
def test_a_bad_ttl_is_refused(plain_store: PostgresStore, ttl: Any) -> None:
    with pytest.raises(InvalidValueError, match="ttl"):
        plain_store.put(("ns",), "k", {"v": 1}, ttl=ttl)


def test_deeply_nested_values_are_stored_or_refused_cleanly(
    plain_store: PostgresStore, dsn: str
) -> None:
    value: dict[str, Any] = {}
    node = value
    for _ in range(5000):
        node["n"] = {}
        node = node["n"]
    try:
        plain_store.put(("ns",), "deep", value)
    except (
        InvalidValueError,
        psycopg.errors.ProgramLimitExceeded,
        psycopg.errors.StatementTooComplex,
    ):
        assert _count(dsn) == 0
    else:
        assert plain_store.get(("ns",), "deep") is not None
