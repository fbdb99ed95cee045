"""A batch's puts and deletes as one statement (see `store._batch`)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from psycopg import sql

from checkpoint_pg._runtime.protocol import Query
from store._namespace import ns_text
from store._params import Params
from store._sql import MAX_VALUES_ROWS, StoreNames, query
from store._validate import valid_ttl

if TYPE_CHECKING:
    from store._batch import Plan


def write_query(plan: Plan, vectors: list[str]) -> Query:
    """Every put and delete of the batch; `vectors`: the embeddings of `plan.documents`."""
    deletes = [key for key, op in plan.puts.items() if op.value is None]
    upserts = [key for key, op in plan.puts.items() if op.value is not None]
    ttls = [valid_ttl(plan.puts[key].ttl) for key in upserts]
    if upserts and not deletes and plan.index is None and len(upserts) <= MAX_VALUES_ROWS:
        return _upsert_rows(plan, upserts, ttls)
    if deletes and not upserts and len(deletes) <= MAX_VALUES_ROWS:
        return _delete_rows(plan, deletes)
    params = Params()
    if deletes:
        params.values["deleted_prefixes"] = [ns_text(ns) for ns, _ in deletes]
        params.values["deleted_keys"] = [key for _, key in deletes]
    if upserts:
        params.values["prefixes"] = [ns_text(ns) for ns, _ in upserts]
        params.values["keys"] = [key for _, key in upserts]
        params.values["values"] = [plan.values[key] for key in upserts]
        params.values["ttls"] = ttls
    vector_type = None
    if plan.index is not None and upserts:
        vector_type = plan.index.vector_type
        docs = plan.documents
        params.values["field_prefixes"] = [ns_text(d[0]) for d in docs]
        params.values["field_keys"] = [d[1] for d in docs]
        params.values["field_names"] = [d[2] for d in docs]
        params.values["embeddings"] = vectors
    text = _writes_text(plan.names, bool(deletes), bool(upserts), vector_type)
    return Query(text, params.values)


@functools.lru_cache(maxsize=64)
def _writes_text(names: StoreNames, deletes: bool, upserts: bool, vector_type: str | None) -> str:
    """Only the CTEs the batch needs: an empty one still costs the server a plan and a scan."""
    ctes: list[sql.Composable] = []
    if deletes:
        ctes.append(query("delete_items").compose(store=names.store))
    if upserts:
        ctes.append(query("upsert_items").compose(store=names.store))
    if vector_type is not None:
        ctes.append(query("delete_stale_vectors").compose(vectors=names.vectors))
        ctes.append(
            query("upsert_vectors").compose(vectors=names.vectors, vector_type=sql.SQL(vector_type))
        )
    return query("writes").render(ctes=sql.SQL(",\n").join(ctes))


def _upsert_rows(
    plan: Plan, upserts: list[tuple[tuple[str, ...], str]], ttls: list[float | None]
) -> Query:
    """The common case (a few puts, no vectors): VALUES rows, no CTE and no arrays to build
    or unnest."""
    params: dict[str, object] = {}
    for i, ((ns, key), ttl) in enumerate(zip(upserts, ttls, strict=True)):
        params[f"prefix{i}"] = ns_text(ns)
        params[f"key{i}"] = key
        params[f"value{i}"] = plan.values[(ns, key)]
        if ttl is not None:
            params[f"ttl{i}"] = ttl
    pattern = tuple(ttl is not None for ttl in ttls)
    return Query(_upsert_rows_text(plan.names, pattern), params)


@functools.lru_cache(maxsize=512)
def _upsert_rows_text(names: StoreNames, with_ttl: tuple[bool, ...]) -> str:
    """The upsert of one VALUES row per item (`with_ttl`: whether each has a TTL), built once
    per table and pattern."""
    rows = []
    for i, ttl in enumerate(with_ttl):
        row = query("upsert_row" if ttl else "upsert_row_without_ttl")
        parts = {
            "prefix": sql.Placeholder(f"prefix{i}"),
            "key": sql.Placeholder(f"key{i}"),
            "value": sql.Placeholder(f"value{i}"),
        }
        if ttl:
            parts["ttl"] = sql.Placeholder(f"ttl{i}")
        rows.append(row.compose(**parts))
    return query("upsert_rows").render(store=names.store, rows=sql.SQL(", ").join(rows))


def _delete_rows(plan: Plan, deletes: list[tuple[tuple[str, ...], str]]) -> Query:
    """A few deletes and nothing else: VALUES rows, no CTE and no arrays (on Citus, a single
    delete is then routed to its item's shard). Vectors go with their items (the foreign
    key cascades)."""
    params: dict[str, object] = {}
    for i, (ns, key) in enumerate(deletes):
        params[f"prefix{i}"] = ns_text(ns)
        params[f"key{i}"] = key
    return Query(_delete_rows_text(plan.names, len(deletes)), params)


@functools.lru_cache(maxsize=64)
def _delete_rows_text(names: StoreNames, count: int) -> str:
    """The delete of `count` VALUES rows, built once per table and count."""
    row = query("delete_row")
    rows = sql.SQL(", ").join(
        row.compose(prefix=sql.Placeholder(f"prefix{i}"), key=sql.Placeholder(f"key{i}"))
        for i in range(count)
    )
    return query("delete_rows").render(store=names.store, rows=rows)
