"""A batch's read rows back into LangGraph results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from langgraph.store.base import Item, Result, SearchItem

from checkpoint_pg._runtime.protocol import Rows
from store import _sealed
from store._namespace import ns_text, ns_tuple

if TYPE_CHECKING:
    from store._batch import Plan

# Prefixes found beyond the bounded read, per store: their searches skip it. Cleared when
# full (a prefix that shrank is then tried bounded again).
MAX_BROAD_PREFIXES = 4096


def collect(
    plan: Plan, rows: Rows, results: list[Result], *, only: set[int] | None = None
) -> set[int]:
    """Fill `results` from read rows (of the searches in `only`, on a second round);
    return the searches to run again: ANN searches that came back short, and searches
    of a prefix beyond the bound."""
    by_op: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_op.setdefault(row[0], []).append(row)
    for position, _ in plan.gets if only is None else []:
        for row in by_op.get(position, []):
            results[position] = item(opened(plan, row))
    short: set[int] = set()
    for search in plan.searches:
        if only is not None and search.position not in only:
            continue
        found = sorted(by_op.get(search.position, []), key=lambda r: r[8])
        if found and found[0][1] is None:  # the marker of a prefix beyond the bound
            if len(plan.broad) >= MAX_BROAD_PREFIXES:
                plan.broad.clear()
            plan.broad.add(ns_text(search.op.namespace_prefix))
            short.add(search.position)
            continue
        results[search.position] = [search_item(opened(plan, r)) for r in found]
        # Short: the ANN index stopped early, or a few items' many vectors filled the
        # candidate rows. The exact re-run ranks every matching vector, uncapped.
        ann = search.query_index is not None
        if ann and len(found) < search.op.limit:
            short.add(search.position)
    for position, _ in plan.listings if only is None else []:
        found = sorted(by_op.get(position, []), key=lambda r: r[8])
        results[position] = [ns_tuple(r[1]) for r in found]
    return short


def opened(plan: Plan, row: Sequence[Any]) -> Sequence[Any]:
    """`row` with its value opened, when the store encrypts (store._sealed)."""
    if plan.encryption is None:
        return row
    value = _sealed.open_value(plan.encryption, row[3], row[1], row[2])
    return (*row[:3], value, *row[4:])


def item(row: Sequence[Any]) -> Item:
    _, prefix, key, value, created_at, updated_at = row[:6]
    return Item(
        value=value,
        key=key,
        namespace=ns_tuple(prefix),
        created_at=cast(datetime, created_at),
        updated_at=cast(datetime, updated_at),
    )


def search_item(row: Sequence[Any]) -> SearchItem:
    _, prefix, key, value, created_at, updated_at, score = row[:7]
    return SearchItem(
        namespace=ns_tuple(prefix),
        key=key,
        value=value,
        created_at=created_at,
        updated_at=updated_at,
        score=None if score is None else float(score),
    )
