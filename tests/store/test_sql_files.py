"""The store's .sql files: every block parses and renders, and the statements a batch sends
bind exactly the named parameters they use (no server needed)."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import pytest
from langgraph.store.base import GetOp, ListNamespacesOp, MatchCondition, PutOp, SearchOp
from psycopg import sql

from checkpoint_pg._runtime.protocol import Query
from checkpoint_pg._runtime.sqlfile import load
from store import _schema
from store._index import vector_index
from store._plan import plan_batch
from store._reads import read_query
from store._sql import migrations_file, names_for, queries_file
from store._text import SearchChoice, text_index
from store._writes import write_query

FILES = sorted(p.name for p in resources.files("store").iterdir() if p.name.endswith(".sql"))
SCHEMAS = [None, "a schema"]
INDEX = vector_index(
    {"dims": 2, "embed": lambda texts: [[0.0, 1.0] for _ in texts], "fields": ["text"]}
)


def _parts(schema: str | None) -> dict[str, sql.Composable]:
    """A value for every part the files may name: the store's names, and a stand-in for
    each part the code composes."""
    made = {
        name: sql.SQL(f"<{name}>")
        for name in [
            "number_case",
            "number_body",
            "vector_type",
            "dims",
            "index_kind",
            "opclass",
            "index_params",
            "table",
            "index",
            "path",
            "source",
            "rows",
            "op",
            "prefix",
            "key",
            "refresh",
            "pattern",
            "namespace",
            "filter",
            "limit",
            "offset",
            "score",
            "distance",
            "order",
            "candidates",
            "nearest_items",
            "vectors",
            "operator",
            "query",
            "arrays",
            "columns",
            "read",
            "bound",
            "conditions",
            "depth",
            "union",
            "ctes",
            "refreshes",
            "expiry",
            "ttl",
            "value",
            "document",
            "tsquery",
            "config",
            "text",
            "k",
            "text_weight",
            "vector_weight",
            "settings",
            "column",
        ]
    }
    return {**made, **names_for(schema).parts()}


def test_every_sql_file_the_store_ships_is_one_its_code_loads() -> None:
    """No orphan file (statements nothing sends) and no file the code expects but lacks."""
    loaded = {queries_file().path, migrations_file().path}
    assert loaded == {f"store/{name}" for name in FILES}


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("filename", FILES)
def test_every_statement_renders_with_the_parts_it_names(filename: str, schema: str | None) -> None:
    parts = _parts(schema)
    for statement in load("store", filename).statements.values():
        assert statement.parts <= parts.keys(), (statement.name, statement.parts - parts.keys())
        text = statement.render(**parts)
        assert "{" not in re.sub(r"'[^']*'|\{\d+,\d+\}", "", text), statement.name


# What the migrations render to; the migration tables record only version numbers, so these
# texts must never change (a new migration is a new block, appended to its list).
MIGRATIONS_SHA256 = {
    None: "9033e3896eb73f2ae73480d44910cb3644a832e6434ad8768049093cff667d66",
    "a schema": "1fa33e2ef514d12284a62d5fd63e7b74356640d96d8f22dea10c595519af50cf",
}


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_migrations_render_byte_for_byte_as_released(schema: str | None) -> None:
    index = vector_index(
        {
            "dims": 3,
            "embed": lambda texts: [[0.0] * 3 for _ in texts],
            "ann_index_config": {"kind": "hnsw", "m": 8},
        }
    )
    steps = _schema.migrate(schema, index, ("a.b",))
    texts: list[str] = []
    query = steps.send(None)
    try:
        while True:
            if not re.search(r"pg_advisory|migrations", query.sql):
                texts.append(query.sql)
            answer = [(None,)] if "max(v)" in query.sql else [("public",)]
            query = steps.send(answer)
    except StopIteration:
        pass
    digest = hashlib.sha256("\n--\n".join(texts).encode()).hexdigest()
    assert (len(texts), digest) == (18, MIGRATIONS_SHA256[schema])


_NAMED = re.compile(r"%\((\w+)\)[sb]")
_POSITIONAL = re.compile(r"%[sb]")

BATCHES = {
    "few gets": [GetOp(("a",), "k", refresh_ttl=True), GetOp(("b",), "k")],
    "many gets": [GetOp(("a",), f"k{i}") for i in range(20)],
    "few puts": [PutOp(("a",), "k", {"x": 1}, ttl=2), PutOp(("a",), "j", {"x": 2})],
    "many puts and deletes": [
        *(PutOp(("a",), f"k{i}", {"text": "t"}, ttl=i or None) for i in range(20)),
        PutOp(("a",), "gone", None),
    ],
    "searches": [
        SearchOp((), filter={"n": {"$gt": 1}, "tag": "x", "o": {"p": [1, True]}}),
        SearchOp(("u", "1"), filter={"t": {"$in": ["a", 1]}}, limit=3),
        SearchOp(("u", "2"), filter={"t": {"$in": ["b"]}}, refresh_ttl=True),
        SearchOp(("u",), query="hello", filter={"x": None}),
    ],
    "listings": [
        ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("x", "*")),), max_depth=2),
        ListNamespacesOp(),
    ],
}


def _queries(schema: str | None, ops: list[object]) -> list[Query]:
    plan = plan_batch(ops, names_for(schema), INDEX)  # type: ignore[arg-type]
    queries = ["[0.5,0.5]" for _ in plan.queries]
    found = [read_query(plan, queries, exact=set())]
    found.append(read_query(plan, queries, exact={0, 1, 2, 3}, only={0, 1, 2, 3}))
    if plan.puts:
        found.append(write_query(plan, ["[0.5,0.5]" for _ in plan.documents]))
    return [q for q in found if q is not None]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("batch", BATCHES)
def test_a_batch_binds_exactly_the_named_parameters_it_uses(batch: str, schema: str | None) -> None:
    for query in _queries(schema, BATCHES[batch]):  # type: ignore[arg-type]
        assert isinstance(query.params, dict)
        assert not _POSITIONAL.search(_NAMED.sub("", query.sql))
        assert set(_NAMED.findall(query.sql)) == query.params.keys()


TEXT = text_index({"text": {"language": "english"}, "fields": ["text", "tags[*]"]})
TUNED = vector_index(
    {
        "dims": 2,
        "embed": lambda texts: [[0.0, 1.0] for _ in texts],
        "ann_search": {"ef_search": 100, "iterative_scan": "relaxed_order"},
    }
)


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("mode", ["text", "hybrid", "vector"])
def test_a_text_hybrid_or_tuned_search_binds_exactly_the_parameters_it_uses(
    mode: str, schema: str | None
) -> None:
    ops = [
        SearchOp(("u",), query="hello world", filter={"x": 1}),
        SearchOp((), query="a -b", limit=3, offset=2),
    ]
    tuned = SearchChoice(mode, {"ef_search": 7})  # type: ignore[arg-type]
    default = SearchChoice(mode)  # type: ignore[arg-type]
    plan = plan_batch(ops, names_for(schema), TUNED, text=TEXT, choices={0: tuned, 1: default})
    queries = ["[0.5,0.5]" for _ in plan.queries]
    for query in [
        read_query(plan, queries, exact=set()),
        read_query(plan, queries, exact={0, 1}, only={0, 1}),
    ]:
        assert query is not None
        assert isinstance(query.params, dict)
        assert not _POSITIONAL.search(_NAMED.sub("", query.sql))
        assert set(_NAMED.findall(query.sql)) == query.params.keys()
