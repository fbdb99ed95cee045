"""Validate a batch's ops and sort them into a `Plan`: typed errors before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable
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
from store._index import VectorIndex
from store._namespace import ns_text
from store._sql import StoreNames
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
from store.errors import InvalidFilterError, InvalidValueError


@dataclass
class Search:
    position: int
    op: SearchOp
    query_index: int | None  # into Plan.queries, when embedded
    filter: CompiledFilter


def plan_batch(
    ops: Iterable[Op],
    names: StoreNames,
    index: VectorIndex | None,
    broad: set[str] | None = None,
    encryption: RowBoundEncryption | None = None,
    database: Database | None = None,
) -> Plan:
    """Validate `ops` and plan them; raises a typed error before anything is sent. `broad`:
    the store's set of prefixes known to be beyond the bounded read, kept up to date;
    `database`: what the store knows of its database (Citus or not), kept up to date."""
    ops = list(ops)
    plan = Plan(
        size=len(ops),
        names=names,
        index=index,
        broad=set() if broad is None else broad,
        encryption=encryption,
        database=Database() if database is None else database,
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
            _add_search(plan, position, op)
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
                for field_name, text in index.texts_for(op.value, op.index):
                    check_key_row(namespace, key, field_name)
                    plan.documents.append((namespace, key, field_name, text))
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


def _add_search(plan: Plan, position: int, op: SearchOp) -> None:
    valid_count(op.limit, "limit")
    valid_count(op.offset, "offset")
    if op.filter and plan.encryption is not None:
        raise InvalidFilterError(
            "search filters read item values in SQL, and this store encrypts them"
        )
    compiled = compile_filter(op.filter)
    query_index = None
    if op.query and plan.index is not None:
        if not isinstance(op.query, str):
            raise InvalidValueError("a search query must be a string")
        query_index = len(plan.queries)
        plan.queries.append(op.query)
    plan.searches.append(Search(position, op, query_index, compiled))
