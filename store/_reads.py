"""A batch's reads as one statement: a UNION ALL of branches (see `store._batch`).

Values that differ between branches of the same kind are bound under names unique to the
branch (``search3_limit``, ``bounded0_prefixes``...), so one statement holds them all.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, cast

from langgraph.store.base import ListNamespacesOp
from psycopg import sql
from psycopg.adapt import PyFormat

from checkpoint_pg._runtime.limits import BIGINT_MAX
from checkpoint_pg._runtime.protocol import Query
from store._filters import Form, Shape, columnar, columnar_arrays, composed
from store._namespace import below_pattern, match_pattern, ns_text
from store._params import Params
from store._sql import MAX_VALUES_ROWS, StoreNames, query
from store._text import Fusion, TextIndex

if TYPE_CHECKING:
    from collections.abc import Sequence

    from store._batch import Plan
    from store._index import VectorIndex
    from store._plan import Search

# A search under a namespace prefix first reads the prefix's items by the prefix index, if it
# holds at most this many: a prepared statement whose plan does not depend on the values, so
# a search in one user's namespace is planned once and never ANDs the prefix with the GIN
# index (whose bitmap for a common value costs more than reading the namespace:
# benchmarks/RESULTS.md, "Design measurements"). A bigger prefix is searched again, planned
# with its values, in the next round trip.
BOUNDED_PREFIX_ITEMS = 256

Parts = dict[str, sql.Composable]


def read_query(
    plan: Plan, queries: Sequence[str], *, exact: set[int], only: set[int] | None = None
) -> Query | None:
    """The batch's reads (only the searches in `only`, on a second round; those in `exact`
    ranked exactly), or None when it has none."""
    params = Params()
    branches: list[str] = []
    refresh_gets = refresh_found = False
    if plan.gets and only is None:
        branches.append(_gets(plan, params))
        refresh_gets = any(op.refresh_ttl for _, op in plan.gets)
    # Prepared (planned once per text) only when every branch's plan is right for any
    # values: gets, and searches that read a bounded prefix.
    stable = only is None and not plan.listings
    # bounded searches by filter shape: each shape is one branch, whatever its count
    shapes: dict[Shape, list[Search]] = {}
    for search in plan.searches:
        if only is not None and search.position not in only:
            continue
        bounded = only is None and _bounded(plan, search)
        stable &= bounded
        refresh_found |= bool(search.op.refresh_ttl)
        if bounded:
            shapes.setdefault(search.filter.shape(), []).append(search)
        else:
            exactly = search.position in exact
            branches.append(_search(plan, search, queries, params, exact=exactly))
    for k, (shape, group) in enumerate(shapes.items()):
        branches.append(_bounded_searches(plan, shape, group, params, f"bounded{k}_"))
    for position, listing in plan.listings if only is None else []:
        branches.append(_listing(plan, position, listing, params))
    if not branches:
        return None
    refreshes = (refresh_gets, _get_rows(plan), refresh_found)
    form = (plan.names, tuple(branches), *refreshes)
    if len(branches) <= _CACHED_BRANCHES:
        text = _reads_text(*form)
    else:
        text = _reads_text.__wrapped__(*form)
    # Gets have one text for any number of keys, bounded searches one per filter shape:
    # prepared, planned once. Other searches depend on their values (LIKE prefixes,
    # expression indexes, vectors), so they are planned each time.
    return Query(text, params.values, fetch=True, prepare=None if stable else False)


# Statements of at most this many branches are kept once built (a batch of a few ops, the
# usual one, then composes nothing); longer ones are built each time, not kept.
_CACHED_BRANCHES = 8


@functools.lru_cache(maxsize=256)
def _reads_text(
    names: StoreNames,
    branches: tuple[str, ...],
    gets: bool,
    get_rows: int | None,
    found: bool,
) -> str:
    """The branches as one statement, built once per batch form; with the refresh of the
    gets' items (`gets`; `get_rows`: their VALUES rows, None for the arrays) and of the
    searches' (`found`)."""
    union = sql.SQL("\nUNION ALL\n").join(sql.SQL(f"({branch})") for branch in branches)
    if not gets and not found:
        return query("reads").render(union=union)
    expiry = query("refreshed_expiry").compose()
    refreshes: list[sql.Composable] = []
    if gets:
        source = _get_source(get_rows)
        refreshes.append(
            query("refresh_gets").compose(store=names.store, source=source, expiry=expiry)
        )
    if found:
        refreshes.append(query("refresh_found").compose(store=names.store, expiry=expiry))
    return query("reads_refreshing").render(union=union, refreshes=sql.SQL(",\n").join(refreshes))


def _bounded(plan: Plan, search: Search) -> bool:
    # Citus cannot push down the bounded read (an aggregate in a lateral subquery over the
    # searches' arrays): there every search takes its planned form, sent to every shard.
    if plan.database.citus:
        return False
    prefix = search.op.namespace_prefix
    return search.mode is None and bool(prefix) and ns_text(prefix) not in plan.broad


def _get_rows(plan: Plan) -> int | None:
    """The gets' form: as many VALUES rows, or None for the arrays (more than a few)."""
    return len(plan.gets) if len(plan.gets) <= MAX_VALUES_ROWS else None


def _gets(plan: Plan, params: Params) -> str:
    """Every get: a few as VALUES rows (the cheaper statement for a few, a single `get`
    above all: benchmarks/RESULTS.md, "Design measurements"), more as arrays."""
    gets = plan.gets
    rows = _get_rows(plan)
    if rows is not None:
        for i, (position, op) in enumerate(gets):
            params.values[f"get{i}_op"] = position
            params.values[f"get{i}_prefix"] = ns_text(op.namespace)
            params.values[f"get{i}_key"] = op.key
            params.values[f"get{i}_refresh"] = bool(op.refresh_ttl)
    else:
        params.values["get_ops"] = [position for position, _ in gets]
        params.values["get_prefixes"] = [ns_text(op.namespace) for _, op in gets]
        params.values["get_keys"] = [op.key for _, op in gets]
        params.values["get_refresh"] = [bool(op.refresh_ttl) for _, op in gets]
    return _gets_text(plan.names, rows)


@functools.lru_cache(maxsize=64)
def _gets_text(names: StoreNames, rows: int | None) -> str:
    """The gets branch with `rows` VALUES rows (None: the arrays), built once."""
    return query("gets").render(source=_get_source(rows), store=names.store)


@functools.lru_cache(maxsize=64)
def _get_source(rows: int | None) -> sql.Composable:
    """The gets' keys: `rows` VALUES rows, or the arrays (None)."""
    if rows is None:
        return query("get_arrays").compose()
    row = query("get_row")
    return query("get_rows").compose(
        rows=sql.SQL(", ").join(
            row.compose(
                op=sql.Placeholder(f"get{i}_op"),
                prefix=sql.Placeholder(f"get{i}_prefix"),
                key=sql.Placeholder(f"get{i}_key"),
                refresh=sql.Placeholder(f"get{i}_refresh"),
            )
            for i in range(rows)
        )
    )


def _search(
    plan: Plan, search: Search, queries: Sequence[str], params: Params, *, exact: bool
) -> str:
    """One search, by the prefix index, the value index or the vectors' ANN index."""
    op = search.op
    name = f"search{search.position}_"
    params.values[name + "op"] = search.position
    params.values[name + "refresh"] = bool(op.refresh_ttl)
    if op.namespace_prefix:
        params.values[name + "prefix"] = ns_text(op.namespace_prefix)
        params.values[name + "pattern"] = below_pattern(op.namespace_prefix)
    search.filter.bind(params, name + "f")
    # limit + offset within a bigint (no row lies beyond): Citus asks each shard for that sum
    params.values[name + "limit"] = min(op.limit, BIGINT_MAX - op.offset)
    params.values[name + "offset"] = op.offset
    form = search.filter.form()
    prefixed = bool(op.namespace_prefix)
    if search.mode is None:
        return _search_text(plan.names, name, prefixed, form)
    if search.mode == "text":
        params.values[name + "text"] = op.query
        return _text_search_text(plan.names, name, prefixed, form, plan.text)
    index = cast("VectorIndex", plan.index)
    params.values[name + "query"] = queries[cast(int, search.query_index)]
    hybrid = search.mode == "hybrid"
    depth = max(plan.fusion.candidates, op.limit + op.offset) if hybrid else 0
    if hybrid:
        params.values[name + "text"] = op.query
        params.values[name + "depth"] = min(depth, BIGINT_MAX)
    if not exact:
        fan_out = max(1, len(index.fields))
        wanted = (depth or op.limit + op.offset) * fan_out * 2 + 1
        params.values[name + "candidates"] = min(wanted, BIGINT_MAX)
    ann = (index.operator, index.vector_type, index.score_sql("best.dist"), exact)
    chosen = index.search_settings if search.settings is None else search.settings
    settings = () if exact else chosen
    if hybrid:
        return _hybrid_search_text(
            plan.names,
            name,
            prefixed,
            form,
            (*ann, settings),
            cast("TextIndex", plan.text),
            plan.fusion,
        )
    return _vector_search_text(plan.names, name, prefixed, form, (*ann, settings))


def _search_parts(names: StoreNames, name: str, prefixed: bool, form: Form) -> Parts:
    """The parts every search branch has, its values named as `_search` binds them."""
    namespace: sql.Composable = sql.SQL("TRUE")
    if prefixed:
        namespace = query("under_prefix").compose(
            prefix=sql.Placeholder(name + "prefix"), pattern=sql.Placeholder(name + "pattern")
        )
    return {
        "op": sql.Placeholder(name + "op"),
        "refresh": sql.Placeholder(name + "refresh"),
        "namespace": namespace,
        "filter": composed(form, name + "f", names),
        "limit": sql.Placeholder(name + "limit"),
        "offset": sql.Placeholder(name + "offset"),
        "store": names.store,
    }


@functools.lru_cache(maxsize=1024)
def _search_text(names: StoreNames, name: str, prefixed: bool, form: Form) -> str:
    """A search branch without a query vector, built once per form."""
    return query("search").render(**_search_parts(names, name, prefixed, form))


def _text_parts(name: str, text: TextIndex | None) -> Parts:
    """The text index's expression and the query as its tsquery."""
    text = cast("TextIndex", text)
    return {
        "document": text.column("s"),
        "tsquery": query("text_query" if text.match == "all" else "text_query_any").compose(
            config=text.config_sql(), text=sql.Placeholder(name + "text")
        ),
    }


@functools.lru_cache(maxsize=1024)
def _text_search_text(
    names: StoreNames, name: str, prefixed: bool, form: Form, text: TextIndex | None
) -> str:
    """A search branch ranked by full text, built once per form."""
    return query("text_search").render(
        **_search_parts(names, name, prefixed, form), **_text_parts(name, text)
    )


Ann = tuple[str, str, str, bool, tuple[tuple[str, str], ...]]


def _vector_parts(name: str, ann: Ann, names: StoreNames, search: Parts) -> Parts:
    """The vector search's parts (`ann`: the index's distance operator, vector type and
    score expression, whether to rank exactly, and the pgvector settings of its scan;
    `search`: the branch's `_search_parts`, whose namespace and filter the nearest items meet)."""
    operator, vector_type, score, exact, settings = ann
    distance = query("vector_distance").compose(
        operator=sql.SQL(operator),
        query=sql.Placeholder(name + "query"),
        vector_type=sql.SQL(vector_type),
    )
    candidates: sql.Composable = sql.SQL("")
    if not exact and settings:
        calls = sql.SQL(" || ").join(
            sql.SQL("set_config({}, {}, true)").format(sql.Literal(guc), sql.Literal(value))
            for guc, value in settings
        )
        candidates = query("candidates_with_settings").compose(
            candidates=sql.Placeholder(name + "candidates"), settings=calls
        )
    elif not exact:
        candidates = query("candidates").compose(candidates=sql.Placeholder(name + "candidates"))
    return {
        "score": sql.SQL(score),
        "nearest_items": query("nearest_items").compose(
            **search,
            distance=distance,
            order=query("exact_order").compose(distance=distance) if exact else distance,
            candidates=candidates,
            vectors=names.vectors,
        ),
    }


@functools.lru_cache(maxsize=1024)
def _vector_search_text(names: StoreNames, name: str, prefixed: bool, form: Form, ann: Ann) -> str:
    """A search branch by a query vector, built once per form."""
    search = _search_parts(names, name, prefixed, form)
    return query("vector_search").render(**search, **_vector_parts(name, ann, names, search))


@functools.lru_cache(maxsize=1024)
def _hybrid_search_text(
    names: StoreNames,
    name: str,
    prefixed: bool,
    form: Form,
    ann: Ann,
    text: TextIndex,
    fusion: Fusion,
) -> str:
    """A search branch fusing the text and vector rankings, built once per form."""
    search = _search_parts(names, name, prefixed, form)
    parts = _vector_parts(name, ann, names, search)
    del parts["score"]
    return query("hybrid_search").render(
        **search,
        **parts,
        **_text_parts(name, text),
        depth=sql.Placeholder(name + "depth"),
        k=sql.Literal(fusion.k),
        text_weight=sql.Literal(fusion.text_weight),
        vector_weight=sql.Literal(fusion.vector_weight),
    )


def _bounded_searches(
    plan: Plan, shape: Shape, group: list[Search], params: Params, name: str
) -> str:
    """Searches whose filters share `shape`, each under a prefix holding at most
    BOUNDED_PREFIX_ITEMS items: one branch whatever their number (see `_bounded_text`)."""
    text, lists = _bounded_text(plan.names, shape, name)
    params.values[name + "ops"] = [s.position for s in group]
    params.values[name + "prefixes"] = [ns_text(s.op.namespace_prefix) for s in group]
    params.values[name + "refresh"] = [bool(s.op.refresh_ttl) for s in group]
    params.values[name + "limits"] = [s.op.limit for s in group]
    params.values[name + "offsets"] = [s.op.offset for s in group]
    for k, values in enumerate(columnar_arrays([s.filter.values() for s in group], lists)):
        params.values[f"{name}f{k}"] = values
    return text


@functools.lru_cache(maxsize=512)
def _bounded_text(names: StoreNames, shape: Shape, name: str) -> tuple[str, tuple[bool, ...]]:
    """The branch answering bounded searches of one filter shape, and which of its filter
    arrays hold JSON lists (`columnar_arrays`): built once per shape.

    The searches' values arrive in arrays, each a sub-select (a custom plan would see a
    constant array's length, cost less than the generic plan, and PostgreSQL would never
    switch to the generic one: one planning a call). For each search, up to
    BOUNDED_PREFIX_ITEMS + 1 rows of its prefix are read once, counted and aggregated; under
    the bound they are filtered in memory, beyond it the search yields one marker row
    (prefix NULL) and is run again in its planned form.

    The prefix's items lie in ``[ns, ns || '/')`` in byte order (the prefix index's
    ``text_pattern_ops``; ``/`` is the byte after ``.``): the namespace itself, those below
    it, and look-alikes (``a.b-c`` for ``a.b``) that the exact condition removes. ``ORDER BY
    ... USING ~<~`` is that index's own order: with the LIMIT, an index scan is the only
    sensible plan, generic or custom."""
    filter = columnar(shape, names)
    arrays = [("ops", "int[]"), ("prefixes", "text[]"), ("refresh", "bool[]")]
    arrays += [("limits", "int8[]"), ("offsets", "int8[]")]
    arrays += [(f"f{k}", kind) for k, kind in enumerate(filter.arrays)]
    subselects = sql.SQL(", ").join(
        sql.SQL("(SELECT {}::{})").format(
            sql.Placeholder(name + array, PyFormat.BINARY), sql.SQL(kind)
        )
        for array, kind in arrays
    )
    text = query("bounded_searches").render(
        arrays=subselects,
        columns=sql.SQL("".join(f", f{k}" for k in range(len(filter.arrays)))),
        store=names.store,
        read=sql.Literal(BOUNDED_PREFIX_ITEMS + 1),
        bound=sql.Literal(BOUNDED_PREFIX_ITEMS),
        filter=filter.predicate,
    )
    return text, filter.lists


def _listing(plan: Plan, position: int, op: ListNamespacesOp, params: Params) -> str:
    name = f"list{position}_"
    conditions = [query("live").compose()]
    paths = [c for c in op.match_conditions or () if c.path]
    for k, condition in enumerate(paths):
        pattern = match_pattern(condition.path, condition.match_type)
        bound = params.bind(f"{name}pattern{k}", pattern)
        conditions.append(query("prefix_matches").compose(pattern=bound))
    namespace: sql.Composable = sql.SQL("s.prefix")
    if op.max_depth is not None:
        depth = params.bind(name + "depth", op.max_depth)
        namespace = query("first_labels").compose(depth=depth)
    return query("list_namespaces").render(
        op=params.bind(name + "op", position),
        namespace=namespace,
        store=plan.names.store,
        conditions=sql.SQL(" AND ").join(conditions),
        limit=params.bind(name + "limit", op.limit),
        offset=params.bind(name + "offset", op.offset),
    )
