"""Properties of the store: any JSON value under any namespace of odd labels reads back exactly
(get and search), and any filter of the supported operators selects exactly what LangGraph's
`InMemoryStore` selects on the same items.

One store (one schema) serves every example of a test, so the function_scoped_fixture health
check is silenced on purpose; each example works under a root namespace label of its own.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from store import PostgresStore

SHARED_STORE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSONB text: no NUL, no lone surrogates.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
# Floats JSONB gives back as floats: finite, and printed with a fraction (below 1e16).
FLOATS = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=15,
)
VALUES = st.dictionaries(TEXT, JSON, max_size=5)
# Labels: anything LangGraph allows (no period, not empty), odd characters welcome.
LABELS = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=".\x00")
    | st.sampled_from(list("%_\\'\"*[]()^$?+|{}")),
    min_size=1,
    max_size=8,
)
NAMESPACES = st.lists(LABELS, min_size=0, max_size=3).map(tuple)

_roots = itertools.count()


def _json_equal(got: Any, want: Any) -> bool:
    """Equal with the same JSON types all the way down (-0.0 and 0.0 are the same number)."""
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)):
        return type(got) is type(want) and got == want
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(_json_equal(got[k], want[k]) for k in want)
        )
    return (
        isinstance(got, list)
        and len(got) == len(want)
        and all(_json_equal(g, w) for g, w in zip(got, want, strict=True))
    )


@SHARED_STORE
@given(namespace=NAMESPACES, key=TEXT.filter(bool), value=VALUES)
def test_any_value_under_any_namespace_reads_back_exactly(
    plain_store: PostgresStore, namespace: tuple[str, ...], key: str, value: dict[str, Any]
) -> None:
    ns = (f"root{next(_roots)}", *namespace)
    plain_store.put(ns, key, value)
    got = plain_store.get(ns, key)
    assert got is not None
    assert (got.namespace, got.key) == (ns, key)
    assert _json_equal(got.value, value)
    found = plain_store.search(ns)
    assert [(i.namespace, i.key) for i in found] == [(ns, key)]
    assert _json_equal(found[0].value, value)
    assert plain_store.list_namespaces(prefix=ns) == [ns]


# -- filters: the same selection as InMemoryStore -----------------------------------------------

FIELDS = ["a", "b"]
SCALARS = st.sampled_from([None, True, False, 0, 1, 1.0, 2.5, -1, "x", "10", "1e400", 10**400, ""])
FIELD_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=2)
    ),
    max_leaves=4,
)
ITEMS = st.lists(
    st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=3), min_size=1, max_size=8
)
# Range operands are numbers: anything else is refused up front (InvalidFilterError), as the
# in-memory store fails on it for every item.
BOUNDS = st.sampled_from([0, 1, 1.0, 2.5, -1, True, 1e300])
OPERATORS = st.dictionaries(st.sampled_from(["$eq", "$ne"]), SCALARS, min_size=1, max_size=2) | (
    st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), BOUNDS, min_size=1, max_size=2)
)
CONDITIONS = (
    FIELD_VALUES
    | OPERATORS
    | st.dictionaries(st.sampled_from(FIELDS), SCALARS, min_size=1, max_size=2)
)
FILTERS = st.dictionaries(st.sampled_from(FIELDS), CONDITIONS, min_size=1, max_size=2)


def _memory_selects(value: dict[str, Any], filter: dict[str, Any]) -> bool:
    """Whether the in-memory store returns this one item for `filter` (False where it cannot
    compare the values and raises: ours returns no match there)."""
    memory = InMemoryStore()
    memory.put(("m",), "k", value)
    try:
        return bool(memory.search(("m",), filter=filter))
    except (TypeError, ValueError, OverflowError):
        return False


@SHARED_STORE
@given(items=ITEMS, filter=FILTERS)
def test_filters_select_what_the_in_memory_store_selects(
    plain_store: PostgresStore, items: list[dict[str, Any]], filter: dict[str, Any]
) -> None:
    ns = (f"root{next(_roots)}",)
    for index, value in enumerate(items):
        plain_store.put(ns, str(index), value)
    got = {item.key for item in plain_store.search(ns, filter=filter, limit=100)}
    want = {str(i) for i, value in enumerate(items) if _memory_selects(value, filter)}
    assert got == want
