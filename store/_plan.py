"""Validate a batch's ops and sort them into a `Plan`: typed errors before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from langgraph.store.base import (
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    SearchOp,
    validate_op_namespace,
)

from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.limits import INT_MAX
from store import _sealed
from store._batch import Database, Plan
from store._filters import CompiledFilter, compile_filter
from store._index import VectorIndex, ann_search
from store._namespace import ns_text
from store._sql import StoreNames
from store._text import MODES, Fusion, SearchChoice, SearchMode, TextIndex
from store._validate import (
    check_index_fields,
    check_key_row,
    check_put_namespace,
    valid_count,
    valid_key,
    valid_ttl,
    value_json,
    with_tuple_namespace,
)
from store.errors import InvalidFilterError, InvalidIndexConfigError, InvalidValueError


@dataclass
class Search:
    position: int
    op: SearchOp
    query_index: int | None  # into Plan.queries, when embedded
    filter: CompiledFilter
    mode: SearchMode | None = None  # how the query ranks; None: no query to rank by
    # pgvector settings of this search's ANN scan (None: the index's)
    settings: tuple[tuple[str, str], ...] | None = None


def plan_batch(
    ops: Iterable[Op],
    names: StoreNames,
    index: VectorIndex | None,
    broad: set[str] | None = None,
    encryption: RowBoundEncryption | None = None,
    database: Database | None = None,
    *,
    text: TextIndex | None = None,
    fusion: Fusion | None = None,
    choices: Mapping[int, SearchChoice] | None = None,
) -> Plan:
    """Validate `ops` and plan them; raises a typed error before anything is sent. `broad`:
    the store's set of prefixes known to be beyond the bounded read, kept up to date;
    `database`: what the store knows of its database (Citus or not), kept up to date;
    `text`, `fusion`: full-text and hybrid settings; `choices`: a ranking and ANN settings
    chosen per search (by position), else the store's."""
    ops = list(ops)
    plan = Plan(
        size=len(ops),
        names=names,
        index=index,
        broad=set() if broad is None else broad,
        encryption=encryption,
        database=Database() if database is None else database,
        text=text,
        fusion=Fusion() if fusion is None else fusion,
    )
    for position, op in enumerate(ops):
        op = with_tuple_namespace(op)
        validate_op_namespace(op)
        if isinstance(op, GetOp):
            valid_key(op.key)
            plan.gets.append((position, op))
        elif isinstance(op, PutOp):
            _add_put(plan, op)
        elif isinstance(op, SearchOp):
            _add_search(plan, position, op, (choices or {}).get(position) or SearchChoice())
        elif isinstance(op, ListNamespacesOp):
            valid_count(op.limit, "limit")
            valid_count(op.offset, "offset")
            if op.max_depth is not None:
                valid_count(op.max_depth, "max_depth", INT_MAX)
            plan.listings.append((position, op))
        else:
            raise InvalidValueError(f"unknown store op {type(op).__name__}")
    if index is not None:
        for (namespace, key), op in plan.puts.items():
            if op.value is not None:
                for field_name, document in index.texts_for(op.value, op.index):
                    check_key_row(namespace, key, field_name)
                    plan.documents.append((namespace, key, field_name, document))
    return plan


def _add_put(plan: Plan, op: PutOp) -> None:
    check_put_namespace(op.namespace)
    key = valid_key(op.key)
    if op.value is not None:  # a delete inserts no index entry: nothing to check
        check_key_row(op.namespace, key)
        text = value_json(op.value)
        if plan.encryption is not None:
            text = _sealed.seal_value(plan.encryption, text, ns_text(op.namespace), key)
        plan.values[(op.namespace, key)] = text
        valid_ttl(op.ttl)
        check_index_fields(op.index)
    plan.puts.pop((op.namespace, key), None)  # last wins, in batch order
    plan.puts[(op.namespace, key)] = op


def _add_search(plan: Plan, position: int, op: SearchOp, choice: SearchChoice) -> None:
    valid_count(op.limit, "limit")
    valid_count(op.offset, "offset")
    if op.filter and plan.encryption is not None:
        raise InvalidFilterError(
            "search filters read item values in SQL, and this store encrypts them"
        )
    compiled = compile_filter(op.filter)
    ranking = search_mode(plan.index is not None, plan.text is not None, choice.mode)
    settings = None
    if choice.ann_search is not None:
        if plan.index is None:
            raise InvalidIndexConfigError(
                "ann_search= tunes the vector index, and this store has none"
            )
        settings = ann_search(choice.ann_search, plan.index.kind)
    query_index = None
    if op.query and ranking is not None:
        if not isinstance(op.query, str):
            raise InvalidValueError("a search query must be a string")
        if "\x00" in op.query and ranking != "vector":
            raise InvalidValueError("a text search query cannot hold NUL characters (\\x00)")
        if ranking != "text":
            query_index = len(plan.queries)
            plan.queries.append(op.query)
    else:
        ranking = None
    plan.searches.append(Search(position, op, query_index, compiled, ranking, settings))


def search_mode(vector: bool, text: bool, mode: object) -> SearchMode | None:
    """How a query ranks: `mode` when given (its index must be configured), else hybrid
    with both indexes, else the one there is (None: neither, the query is not used)."""
    if mode is None:
        return "hybrid" if vector and text else "vector" if vector else "text" if text else None
    if mode not in MODES:
        raise InvalidValueError(f"search mode must be one of {', '.join(MODES)}, not {mode!r}")
    needs = {"vector": [("vector", vector)], "text": [("text", text)]}
    for name, present in needs.get(str(mode), [("vector", vector), ("text", text)]):
        if not present:
            what = "index= with dims and embed" if name == "vector" else "index={'text': {...}}"
            raise InvalidIndexConfigError(
                f"search mode {mode!r} needs a {name} index, and this store has none ({what})"
            )
    return mode
