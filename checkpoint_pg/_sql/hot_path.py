"""The get_tuple, list, put and put_writes statements, from hot_path.sql.

`list` filters and the row count of a small put or put_writes vary the statement: each
variant is its own statement text (prepared once per connection), composed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from psycopg import sql
from psycopg.adapt import PyFormat

from checkpoint_pg._runtime.sqlfile import Statement
from checkpoint_pg._sql.tables import compose, load_file, render, table_parts

__all__ = [
    "BLOB_ARRAYS",
    "HOT_PATH",
    "LIST_FILTERS",
    "MAX_VALUES_ROWS",
    "WRITE_ARRAYS",
    "list_statement",
    "put_delta_statement",
    "put_statement",
    "select_statement",
    "spread",
    "writes_statement",
]

HOT_PATH = load_file("hot_path.sql")

# A put with up to this many blobs, and put_writes with up to this many writes, send their
# rows as VALUES (one statement text per row count); larger ones send arrays to unnest.
MAX_VALUES_ROWS = 8
BLOB_ARRAYS = ("channels", "versions", "types", "blobs")
WRITE_ARRAYS = ("idxs", "channels", "types", "blobs")

# The part of a VALUES row (blob_row, write_row) -> the array parameter its values come from.
_ROW_ARRAYS = {
    "idx": "idxs",
    "channel": "channels",
    "version": "versions",
    "type": "types",
    "blob": "blobs",
}

# `list` filters by name, in the order they are ANDed.
LIST_FILTERS: Mapping[str, sql.SQL] = MappingProxyType(
    {
        "thread_id": sql.SQL("c.thread_id = %(thread_id)s"),
        "checkpoint_ns": sql.SQL("c.checkpoint_ns = %(checkpoint_ns)s"),
        "checkpoint_id": sql.SQL("c.checkpoint_id = %(checkpoint_id)s"),
        "before": sql.SQL("c.checkpoint_id < %(before)s"),
        "metadata": sql.SQL("c.metadata @> %(metadata)s"),
        "after": sql.SQL(
            "(c.checkpoint_id, c.thread_id, c.checkpoint_ns)"
            " < (%(after_id)s, %(after_thread)s, %(after_ns)s)"
        ),
    }
)


def _select_tuple(
    schema: str | None, *, one_thread: bool, citus: bool, source: str, delta: bool = False
) -> sql.Composed:
    """The select_tuple fragment: keyed by the thread_id parameter when the statement is about
    one thread (one text everywhere, a router query on Citus), else correlated to each row,
    with the blobs found by semijoin on Citus (see channel_blobs_by_semijoin), or through their
    delta chains in delta storage (channel_blobs_by_chain)."""
    thread = sql.SQL("%(thread_id)s") if one_thread else sql.SQL("c.thread_id")
    if delta:
        how = "channel_blobs_by_chain"
    else:
        how = "channel_blobs_by_semijoin" if citus and not one_thread else "channel_blobs_by_probe"
    sources = {
        "table": sql.SQL("{} AS c").format(_table(schema)),
        "latest": compose(HOT_PATH, "latest_checkpoint", schema),
        "page": sql.SQL(
            "page JOIN {} AS c ON c.thread_id = page.thread_id"
            " AND c.checkpoint_ns = page.checkpoint_ns AND c.checkpoint_id = page.checkpoint_id"
        ).format(_table(schema)),
    }
    return compose(
        HOT_PATH,
        "select_tuple",
        schema,
        thread=thread,
        source=sources[source],
        channel_blobs=compose(HOT_PATH, how, schema, thread=thread),
        blob_order=sql.SQL("ORDER BY bl.channel, bl.depth DESC" if delta else ""),
    )


def _table(schema: str | None) -> sql.Composable:
    return table_parts(schema)["checkpoints"]


@cache
def select_statement(schema: str | None, name: str, delta: bool = False) -> str:
    """`select_latest` or `select_by_id`: get_tuple's query, about one thread (following delta
    chains with `delta`)."""
    source = "latest" if name == "select_latest" else "table"
    part = _select_tuple(schema, one_thread=True, citus=False, source=source, delta=delta)
    return render(HOT_PATH, name, schema, select_tuple=part)


@cache
def put_delta_statement(schema: str | None) -> str:
    """`put` in delta storage, with at least one delta among its blobs."""
    return render(HOT_PATH, "put_delta", schema)


@cache
def list_statement(
    schema: str | None, predicates: frozenset[str], *, citus: bool = False, delta: bool = False
) -> str:
    """The `list` page query filtered by `predicates` (names from LIST_FILTERS); `citus`: the
    form Citus can run over many threads (only differs when no thread_id is given); `delta`:
    following delta chains."""
    unknown = predicates - LIST_FILTERS.keys()
    assert not unknown, unknown
    chosen = [LIST_FILTERS[p] for p in LIST_FILTERS if p in predicates]
    one_thread = "thread_id" in predicates
    return render(
        HOT_PATH,
        "list_page",
        schema,
        select_tuple=_select_tuple(
            schema, one_thread=one_thread, citus=citus, source="page", delta=delta
        ),
        filters=sql.SQL(" AND ").join(chosen) if chosen else sql.SQL("TRUE"),
        thread_filter=sql.SQL("WHERE c.thread_id = %(thread_id)s" if one_thread else ""),
    )


def _values_rows(row: Statement, count: int) -> sql.Composable:
    """`count` copies of `row`, the i-th with the parameters ``channels_i``… `spread` makes."""

    def parameter(part: str, i: int) -> sql.Placeholder:
        array = _ROW_ARRAYS[part]
        # Blobs travel in binary, as in the array form: no hex escaping of every byte.
        return sql.Placeholder(
            f"{array}_{i}", PyFormat.BINARY if array == "blobs" else PyFormat.AUTO
        )

    return sql.SQL(", ").join(
        row.compose(**{part: parameter(part, i) for part in sorted(row.parts)})
        for i in range(count)
    )


@cache
def put_statement(schema: str | None, blobs: int) -> str:
    """`put` storing `blobs` new blobs: VALUES rows up to MAX_VALUES_ROWS, else arrays."""
    insert = compose(HOT_PATH, "insert_checkpoint", schema)
    if not blobs:
        return insert.as_string(None)
    if blobs > MAX_VALUES_ROWS:
        return render(HOT_PATH, "put_with_blob_arrays", schema, insert_checkpoint=insert)
    rows = _values_rows(HOT_PATH["blob_row"], blobs)
    return render(HOT_PATH, "put_with_blob_rows", schema, insert_checkpoint=insert, rows=rows)


@cache
def writes_statement(schema: str | None, writes: int, upsert: bool, rows: bool = False) -> str:
    """`put_writes` of `writes` rows: VALUES rows up to MAX_VALUES_ROWS (or always, with
    `rows`), else arrays. Citus takes rows: it routes a VALUES insert to the thread's shard,
    but runs an INSERT … SELECT from unnest through the coordinator ("pull to coordinator")."""
    verb = "upsert" if upsert else "insert"
    if writes > MAX_VALUES_ROWS and not rows:
        return render(HOT_PATH, f"{verb}_write_arrays", schema)
    values = _values_rows(HOT_PATH["write_row"], writes)
    return render(HOT_PATH, f"{verb}_write_rows", schema, rows=values)


def spread(params: dict[str, Any], arrays: tuple[str, ...], rows: bool = False) -> dict[str, Any]:
    """`params` plus one ``name_i`` key per element of each array, for the VALUES forms."""
    count = len(params[arrays[0]])
    if count > MAX_VALUES_ROWS and not rows:
        return params
    out = dict(params)
    for name in arrays:
        for i, value in enumerate(params[name]):
            out[f"{name}_{i}"] = value
    return out
