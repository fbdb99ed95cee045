"""Hostile input to the store: a typed error naming the problem and the table exactly as it was,
or the item stored and read back exactly.

Every case runs against a store seeded with items in ``("seed",)`` and ``("seed", "sub")``
and proves, by snapshot, that nothing else was touched. tests/store/test_store_bad_input.py
holds the basic namespace and value refusals this table does not repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from langgraph.store.base import PutOp

from store import InvalidFilterError, InvalidNamespaceError, InvalidValueError, PostgresStore
from tests.support.hostile_cases import (
    SURROGATE,
    Case,
    Changes,
    count,
    ids,
    nested_dicts,
    nested_lists,
    run_case,
    same,
    snapshot,
)

TABLES = ("store",)
BIG = 50 * 1024 * 1024
SQL_TEXT = "x') OR 1=1; DROP TABLE store; --"
S = SURROGATE
LABELS_1000 = tuple(f"label-{i}" for i in range(1000))


@dataclass
class Env:
    dsn: str
    store: PostgresStore


@pytest.fixture
def env(dsn: str) -> Iterator[Env]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn)
        store.setup()
        store.put(("seed",), "a", {"n": 1, "text": "hello", "tags": ["x"]})
        store.put(("seed",), "b", {"n": 10, "text": "world"}, ttl=60)
        store.put(("seed", "sub"), "c", {"n": 5, "nested": {"k": "v"}})
        store.put(("big",), "d", {"n": 10**400, "s": "1e999"})
        yield Env(dsn, store)


def item_row(namespace: tuple[str, ...], key: str) -> Changes:
    return {"store": ("prefix = %s AND key = %s", [".".join(namespace), key])}


def stores(
    id: str,
    value: dict[str, Any],
    namespace: Any = ("t",),
    key: Any = "k",
    *,
    reads: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Case[Env]:
    """A put that must read back exactly (or as `reads`), as the only new row."""
    ns = tuple(namespace)
    text_key = str(key)  # LangGraph's put turns the key into text, as the in-memory store does

    def check(env: Env, _: Any) -> None:
        got = env.store.get(ns, text_key)
        assert got is not None
        assert got.namespace == ns
        assert got.key == text_key
        assert same(got.value, value if reads is None else reads)
        assert count(env.dsn, "store", "prefix = %s", [".".join(ns)]) == 1

    return Case(
        id=id,
        surface="put",
        run=lambda e: e.store.put(namespace, key, value, **kwargs),
        check=check,
        changes=lambda e: item_row(ns, text_key),
    )


def refused(surface: str, id: str, run: Any, error: type[BaseException], match: str) -> Case[Env]:
    return Case(id=id, surface=surface, run=run, error=error, match=match)


def unchanged(surface: str, id: str, run: Any, expect: Any) -> Case[Env]:
    def check(env: Env, result: Any) -> None:
        assert result == expect

    return Case(id=id, surface=surface, run=run, check=check)


def put(env: Env, namespace: Any = ("t",), key: Any = "k", value: Any = None, **kw: Any) -> None:
    env.store.put(namespace, key, {"v": 1} if value is None else value, **kw)


def search(env: Env, prefix: Any = ("seed",), **kwargs: Any) -> list[str]:
    return [item.key for item in env.store.search(prefix, **kwargs)]


IVE = InvalidValueError
INE = InvalidNamespaceError
IFE = InvalidFilterError

CASES: list[Case[Env]] = [
    # put: refused
    refused("put", "value-surrogate", lambda e: put(e, value={"t": "x" + S}), IVE, "surrogate"),
    refused("put", "value-key-surrogate", lambda e: put(e, value={S: 1}), IVE, "lone surrogate"),
    refused("put", "key-surrogate", lambda e: put(e, key="k" + S), IVE, "item key contains"),
    refused("put", "label-surrogate", lambda e: put(e, ("a" + S,)), INE, "lone surrogate"),
    refused("put", "namespace-str", lambda e: put(e, "seed"), INE, "must be a tuple"),
    refused(
        "put",
        "op-key-int",
        lambda e: e.store.batch([PutOp(("t",), 5, {"v": 1})]),  # type: ignore[arg-type]
        IVE,
        "an item key must be a string, not int",
    ),
    refused(
        "put",
        "value-infinity",
        lambda e: put(e, value={"f": float("inf")}),
        IVE,
        "not JSON-serialisable",
    ),
    refused(
        "put", "value-bytes", lambda e: put(e, value={"b": b"\xff"}), IVE, "not JSON-serialisable"
    ),
    refused(
        "put",
        "value-too-deep",
        lambda e: put(e, value=nested_dicts(5000)),
        IVE,
        "nested too deeply",
    ),
    refused("put", "ttl-past-int-column", lambda e: put(e, ttl=1e12), IVE, "ttl is"),
    refused(
        "put", "ttl-nan", lambda e: put(e, ttl=float("nan")), IVE, "ttl must be a positive number"
    ),
    refused("put", "ttl-str", lambda e: put(e, ttl="60"), IVE, "ttl must be a number"),
    refused("put", "index-str", lambda e: put(e, index="text"), IVE, "index must be False"),
    refused("put", "index-ints", lambda e: put(e, index=[1]), IVE, "not a field path"),
    refused("put", "index-surrogate", lambda e: put(e, index=["t" + S]), IVE, "not a field path"),
    # put: stored exactly
    stores("namespace-list", {"v": 1}, namespace=["t", "u"]),
    stores("quotes-backslash-percent", {"v": "'\\%_"}, namespace=("a'b\\c%_",), key="k'\\%_"),
    stores("sql-and-operator-keys", {SQL_TEXT: 1, "$gt": {"$where": "1"}, "": None}),
    stores("big-numbers", {"big": 10**400, "neg": -(10**30), "tiny": 5e-324, "third": 1 / 3}),
    # JSONB keeps numbers as numerics: a float it prints without a fraction comes back as an
    # int of the same value (the official store does the same; there is no blob to move it to).
    stores("integral-float", {"f": 1e16, "g": 2.5e20}, reads={"f": 10**16, "g": 25 * 10**19}),
    stores("key-int-as-text", {"v": 1}, key=5),
    stores("literal-backslash-u0000-text", {"\\u0000": "a\\u0000b\\\\u0000"}),
    stores("nested-200", nested_dicts(200)),
    stores("nested-lists-200", {"l": nested_lists(200)}),
    stores("unicode", {"ключ": "値", "👩‍👩‍👧": ["\u200b", "\u202e", "\U0001f600"]}),
    stores("ttl-at-limit", {"v": 1}, ttl=2**31 - 1),
    stores("value-50mb", {"text": "x" * BIG}),
    # get
    refused("get", "key-surrogate", lambda e: e.store.get(("seed",), S), IVE, "item key contains"),
    refused("get", "namespace-str", lambda e: e.store.get("seed", "a"), INE, "must be a tuple"),
    unchanged("get", "namespace-wildcard", lambda e: e.store.get(("se%",), "a"), None),
    unchanged("get", "key-wildcard", lambda e: e.store.get(("seed",), "%"), None),
    # search
    refused(
        "search", "filter-surrogate", lambda e: search(e, filter={"text": S}), IFE, "surrogate"
    ),
    refused(
        "search",
        "filter-key-surrogate",
        lambda e: search(e, filter={"t" + S: 1}),
        IFE,
        "a filter key contains a lone surrogate",
    ),
    refused(
        "search", "filter-key-nul", lambda e: search(e, filter={"t\x00": 1}), IFE, "NUL character"
    ),
    refused(
        "search",
        "filter-too-deep",
        lambda e: search(e, filter={"n": nested_dicts(100)}),
        IFE,
        "nested more than",
    ),
    refused(
        "search",
        "filter-huge-number",
        lambda e: search(e, filter={"n": {"$gt": 10**400}}),
        IFE,
        "beyond a float",
    ),
    refused(
        "search",
        "filter-unknown-operator",
        lambda e: search(e, filter={"n": {"$where": "1=1"}}),
        IFE,
        "unknown operator '$where'",
    ),
    refused(
        "search",
        "filter-not-a-dict",
        lambda e: search(e, filter="n = 1"),
        IFE,
        "a filter must be a dict",
    ),
    refused(
        "search",
        "filter-nan",
        lambda e: search(e, filter={"n": float("nan")}),
        IFE,
        "not JSON-serialisable",
    ),
    refused("search", "prefix-str", lambda e: search(e, "seed"), INE, "must be a tuple"),
    refused("search", "prefix-surrogate", lambda e: search(e, (S,)), INE, "lone surrogate"),
    refused("search", "limit-str", lambda e: search(e, limit="5"), IVE, "limit must be"),
    refused("search", "offset-negative", lambda e: search(e, offset=-1), IVE, "offset must be"),
    unchanged("search", "filter-sql-key", lambda e: search(e, filter={SQL_TEXT: 1}), []),
    unchanged(
        "search", "filter-sql-value", lambda e: search(e, filter={"text": "' OR '1'='1"}), []
    ),
    unchanged("search", "prefix-wildcard", lambda e: search(e, ("se%",)), []),
    unchanged(
        "search",
        "range-over-numbers-beyond-a-double",
        lambda e: (
            search(e, ("big",), filter={"n": {"$gt": 0}})
            + search(e, ("big",), filter={"s": {"$lt": 0}})
        ),
        [],
    ),
    unchanged(
        "search", "true-equals-one-as-in-memory", lambda e: search(e, filter={"n": True}), ["a"]
    ),
    unchanged("search", "prefix-underscore", lambda e: search(e, ("see_",)), []),
    # list_namespaces
    refused(
        "list_namespaces",
        "prefix-surrogate",
        lambda e: e.store.list_namespaces(prefix=(S,)),
        INE,
        "lone surrogate",
    ),
    refused(
        "list_namespaces",
        "prefix-str",
        lambda e: e.store.list_namespaces(prefix="seed"),
        INE,
        "must be a tuple",
    ),
    refused(
        "list_namespaces",
        "max-depth-str",
        lambda e: e.store.list_namespaces(max_depth="1"),
        IVE,
        "max_depth must be",
    ),
    unchanged(
        "list_namespaces", "prefix-wildcard", lambda e: e.store.list_namespaces(prefix=("%",)), []
    ),
    unchanged(
        "list_namespaces",
        "suffix-regex",
        lambda e: e.store.list_namespaces(suffix=("s[a-z]b",)),
        [],
    ),
    unchanged(
        "list_namespaces",
        "prefix-regex-anchor",
        lambda e: e.store.list_namespaces(prefix=("^seed$",)),
        [],
    ),
    # PostgreSQL's limits: refused before the statement, naming the limit
    refused(
        "limits",
        "3kb-namespace",
        lambda e: e.store.put(("x" * 3000,), "k", {"v": 1}),
        INE,
        "btree index rows hold at most 2704 bytes",
    ),
    refused(
        "limits",
        "1000-labels",
        lambda e: e.store.put(LABELS_1000, "k", {"v": 1}),
        INE,
        "(1000 labels); PostgreSQL's btree index rows hold at most 2704 bytes",
    ),
    unchanged(
        "limits",
        "delete-of-an-item-too-big-to-exist",
        lambda e: e.store.delete(LABELS_1000, "k"),
        None,
    ),
    unchanged("limits", "search-under-1000-labels", lambda e: e.store.search(LABELS_1000), []),
    refused(
        "limits",
        "search-limit-over-bigint",
        lambda e: e.store.search(("seed",), limit=2**63),
        IVE,
        "at most 9223372036854775807 (PostgreSQL's bigint)",
    ),
    refused(
        "limits",
        "search-offset-over-bigint",
        lambda e: e.store.search(("seed",), offset=2**64),
        IVE,
        "offset is 18446744073709551616; at most 9223372036854775807",
    ),
    unchanged(
        "limits",
        "search-limit-and-offset-at-bigint",
        lambda e: search(e, limit=2**63 - 1, offset=2**63 - 1),
        [],
    ),
    refused(
        "limits",
        "list-namespaces-limit-over-bigint",
        lambda e: e.store.list_namespaces(limit=2**63),
        IVE,
        "limit is 9223372036854775808; at most 9223372036854775807",
    ),
    refused(
        "limits",
        "list-namespaces-offset-over-bigint",
        lambda e: e.store.list_namespaces(offset=2**63),
        IVE,
        "PostgreSQL's bigint",
    ),
    refused(
        "limits",
        "list-namespaces-max-depth-over-int",
        lambda e: e.store.list_namespaces(max_depth=2**31),
        IVE,
        "at most 2147483647 (PostgreSQL's int)",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_hostile_input_to_the_store(env: Env, case: Case[Env]) -> None:
    run_case(case, env, env.dsn, TABLES)


def test_a_batch_with_one_hostile_op_stores_none_of_it(env: Env) -> None:
    before = snapshot(env.dsn, TABLES)
    with pytest.raises(InvalidValueError, match="lone surrogate"):
        env.store.batch(
            [
                PutOp(("t",), "ok", {"v": 1}),
                PutOp(("seed",), "a", {"v": "replaced"}),
                PutOp(("t",), "bad", {"v": S}),
            ]
        )
    assert snapshot(env.dsn, TABLES) == before
