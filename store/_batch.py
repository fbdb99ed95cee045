"""A batch of store ops as at most two statements, sent together: pure, no I/O.

Reads (every get, search and list_namespaces of the batch) are one statement: a UNION ALL
of one branch per search or listing plus one branch for all gets, with the TTL refresh of
what they return as a data-modifying CTE (left out when nothing asks for a refresh, so such
reads work on a read-only replica). Writes (every put and delete, deduplicated, last wins)
are one statement: deletes, upserts, stale-vector deletes and vector upserts as CTEs. Both
travel in one pipeline: one round trip for any mix of ops. Two kinds of search are run again,
together, in a second round trip: a vector search that the ANN index answered with fewer
items than asked (the index stopped early, or one item's many vectors filled the candidate
rows), exactly and uncapped; and a search under a prefix holding more than
BOUNDED_PREFIX_ITEMS items, planned with its values (see `_bounded_searches_sql`).

Embeddings are computed by the shell before any connection is taken: `plan_batch` names the
texts, `Plan.operation` takes their vectors.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)

from checkpoint_pg._json import jsonb_text, lone_surrogate
from checkpoint_pg._protocol import Operation, Query, Rows, Steps
from checkpoint_pg._sql import MAX_VALUES_ROWS
from store._filters import (
    CompiledFilter,
    columnar_arrays,
    columnar_sql,
    compile_filter,
    shape_of,
)
from store._index import VectorIndex
from store._sql import REFRESHED_EXPIRY, StoreNames
from store.errors import InvalidValueError

MAX_KEY_CHARS = 1024
MAX_VALUE_BYTES = 255 * 1024 * 1024  # jsonb's own limit is 256 MB
# `ttl_minutes` is an INT column: a TTL of up to 2**31 - 1 minutes (about 4085 years) fits it,
# and its expiry time fits a timestamp.
MAX_TTL_MINUTES = 2**31 - 1


def live(alias: str) -> str:
    """Predicate: the item is not expired (swept or not)."""
    return f"({alias}.expires_at IS NULL OR {alias}.expires_at > now())"


def ns_text(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def ns_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_condition(alias: str, prefix: Sequence[str]) -> tuple[str, list[Any]]:
    """The namespace `prefix` itself or below it, served by the primary key and prefix index."""
    if not prefix:
        return "TRUE", []
    text = ns_text(prefix)
    return (
        rf"({alias}.prefix = %s OR {alias}.prefix LIKE %s ESCAPE '\')",
        [text, _escape_like(text) + ".%"],
    )


# A search under a namespace prefix first reads the prefix's items by the prefix index, if it
# holds at most this many: a prepared statement whose plan does not depend on the values, so
# a search in one user's namespace is planned once and never ANDs the prefix with the GIN
# index (whose bitmap for a common value costs ~2 ms at 100,000 items). A bigger prefix is
# searched again, planned with its values, in the next round trip.
BOUNDED_PREFIX_ITEMS = 256
# Prefixes found beyond the bound, per store: their searches skip the bounded read. Cleared
# when full (a prefix that shrank is then tried bounded again).
MAX_BROAD_PREFIXES = 4096


def _match_pattern(path: Sequence[str], match_type: str) -> str:
    segments = ("[^.]+" if part == "*" else re.escape(part) for part in path)
    body = r"\.".join(segments)
    return rf"(^|\.){body}$" if match_type == "suffix" else rf"^{body}(\.|$)"


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidValueError(f"an item key must be a string, not {type(key).__name__}")
    if "\x00" in key:
        raise InvalidValueError("an item key contains a NUL character")
    bad = lone_surrogate(key)
    if bad is not None:
        raise InvalidValueError(
            f"an item key contains a lone surrogate (U+{ord(bad):04X}), which is not valid Unicode"
        )
    if len(key) > MAX_KEY_CHARS:
        raise InvalidValueError(f"an item key is {len(key)} characters; at most {MAX_KEY_CHARS}")
    return key


def _labels(labels: Any, what: str) -> tuple[str, ...]:
    """`labels` as a tuple; refuse a plain string (it would be split into one label per
    character) and labels PostgreSQL text cannot hold. LangGraph checks the rest."""
    if isinstance(labels, str) or not isinstance(labels, (tuple, list)):
        raise InvalidNamespaceError(
            f"{what} must be a tuple of strings, not {type(labels).__name__}: {labels!r}"
        )
    for label in labels:
        bad = lone_surrogate(label) if isinstance(label, str) else None
        if bad is not None:
            raise InvalidNamespaceError(
                f"namespace label {label!r} contains a lone surrogate (U+{ord(bad):04X}), "
                "which is not valid Unicode"
            )
    return labels if isinstance(labels, tuple) else tuple(labels)


def _with_tuple_namespace(op: Op) -> Op:
    """`op` with its namespace checked by `_labels` and made a tuple (`op` itself when it
    already is one: a copy costs more than the whole check)."""
    if isinstance(op, (GetOp, PutOp)):
        namespace = _labels(op.namespace, "a namespace")
        return op if namespace is op.namespace else op._replace(namespace=namespace)
    if isinstance(op, SearchOp):
        prefix = _labels(op.namespace_prefix, "a namespace prefix")
        return op if prefix is op.namespace_prefix else op._replace(namespace_prefix=prefix)
    if isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            _labels(condition.path, f"a {condition.match_type} to match")
    return op


def _put_namespace(namespace: tuple[str, ...]) -> None:
    if not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(
            f'Root label for namespace cannot be "langgraph". Got: {namespace}'
        )


def _value_json(value: Any) -> str:
    if not isinstance(value, Mapping):
        raise InvalidValueError(f"an item value must be a dict, not {type(value).__name__}")
    text = jsonb_text(value, "the item value", InvalidValueError)
    if len(text) > MAX_VALUE_BYTES // 4 and len(text.encode()) > MAX_VALUE_BYTES:
        raise InvalidValueError("the item value is larger than the 255 MB a JSONB value can hold")
    return text


def _index_fields(index: Any) -> None:
    """A put's ``index=``: None (the store's fields), False (none) or a list of field paths."""
    if index is None or index is False:
        return
    if isinstance(index, str) or not isinstance(index, (list, tuple)):
        raise InvalidValueError(
            f"index must be False, None or a list of field paths, not {type(index).__name__}"
        )
    for path in index:
        if not isinstance(path, str) or not path or "\x00" in path or lone_surrogate(path):
            raise InvalidValueError(f"index holds {path!r}, which is not a field path")


def _ttl(ttl: Any) -> float | None:
    if ttl is None or isinstance(ttl, NotProvided):
        return None
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool):
        raise InvalidValueError(f"ttl must be a number of minutes, not {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidValueError(f"ttl must be a positive number of minutes, got {ttl!r}")
    if ttl > MAX_TTL_MINUTES:
        raise InvalidValueError(
            f"ttl is {ttl!r} minutes; at most {MAX_TTL_MINUTES} (about 4085 years) are allowed"
        )
    return float(ttl)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValueError(f"{what} must be a non-negative int, got {value!r}")
    return value


@dataclass
class _Search:
    position: int
    op: SearchOp
    query_index: int | None  # into Plan.queries, when embedded
    filter: CompiledFilter


@dataclass
class Plan:
    """A validated batch, waiting for its embeddings."""

    size: int
    names: StoreNames
    index: VectorIndex | None
    # the store's prefixes known to hold more than BOUNDED_PREFIX_ITEMS items (shared, updated)
    broad: set[str] = field(default_factory=set)
    gets: list[tuple[int, GetOp]] = field(default_factory=list)
    searches: list[_Search] = field(default_factory=list)
    listings: list[tuple[int, ListNamespacesOp]] = field(default_factory=list)
    puts: dict[tuple[tuple[str, ...], str], PutOp] = field(default_factory=dict)
    # each put's value as JSON text, serialised once while validating
    values: dict[tuple[tuple[str, ...], str], str] = field(default_factory=dict)
    # texts to embed: item fields (embed_documents) and search queries (embed_query)
    documents: list[tuple[tuple[str, ...], str, str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def operation(
        self, document_vectors: Sequence[Sequence[float]], query_vectors: Sequence[Sequence[float]]
    ) -> Operation[list[Result]]:
        """The batch's operation, given the vectors of `documents` and `queries`."""
        vectors = [
            cast(VectorIndex, self.index).check(v, "an embedding of an item's text")
            for v in document_vectors
        ]
        queries = [
            cast(VectorIndex, self.index).check(v, "a query embedding") for v in query_vectors
        ]
        return Operation(self._steps(vectors, queries), writes=bool(self.puts), name="store.batch")

    # -- statements ------------------------------------------------------------------------

    def _steps(self, vectors: list[str], queries: list[str]) -> Steps[list[Result]]:
        results: list[Result] = [None] * self.size
        batch: list[Query] = []
        reads = self._reads(queries, exact=set())
        reads_at = len(batch)
        if reads is not None:
            batch.append(reads)
        if self.puts:
            batch.append(self._writes(vectors))
        if not batch:
            return results
        # One statement goes alone; two travel together in one pipeline: one round trip.
        answers = (yield batch) if len(batch) > 1 else [(yield batch[0])]
        if reads is not None:
            short = self._collect(answers[reads_at], results)
            if short:
                again = self._reads(queries, exact=short, only=short)
                if again is not None:
                    self._collect((yield again), results, only=short)
        return results

    def _reads(
        self, queries: list[str], *, exact: set[int], only: set[int] | None = None
    ) -> Query | None:
        branches: list[str] = []
        params: list[Any] = []
        refresh_any = False
        n = self.names
        if self.gets and only is None:
            if len(self.gets) <= MAX_VALUES_ROWS:
                # A few gets (a single `get` above all) as VALUES rows: the server runs this in
                # less than half the time of the unnest join (139 against 315 us for one get
                # on PostgreSQL 15, TTL refresh included); from ~20 gets unnest is faster
                # again (408 against 580 us).
                rows = ", ".join("(%s::int, %s::text, %s::text, %s::bool)" for _ in self.gets)
                source = f"(VALUES {rows})"
                for i, op in self.gets:
                    params += [i, ns_text(op.namespace), op.key, bool(op.refresh_ttl)]
            else:
                source = "unnest(%b::int[], %b::text[], %b::text[], %b::bool[])"
                params += [
                    [i for i, _ in self.gets],
                    [ns_text(op.namespace) for _, op in self.gets],
                    [op.key for _, op in self.gets],
                    [bool(op.refresh_ttl) for _, op in self.gets],
                ]
            branches.append(
                f"""SELECT w.op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
                       NULL::float8 AS score, w.refresh, w.op::bigint AS rank
                FROM {source} AS w(op, prefix, key, refresh)
                JOIN {n.store} AS s ON s.prefix = w.prefix AND s.key = w.key
                WHERE {live("s")}"""
            )
            refresh_any |= any(op.refresh_ttl for _, op in self.gets)
        # Prepared (planned once per text) only when every branch's plan is right for any
        # values: gets, and searches that read a bounded prefix.
        stable = only is None and not self.listings
        # bounded searches by filter shape: each shape is one branch, whatever its count
        shapes: dict[tuple[str, tuple[type, ...]], list[tuple[_Search, list[Any]]]] = {}
        for search in self.searches:
            if only is not None and search.position not in only:
                continue
            prefix = search.op.namespace_prefix
            bounded = (
                only is None
                and search.query_index is None
                and bool(prefix)
                and ns_text(prefix) not in self.broad
            )
            stable &= bounded
            refresh_any |= bool(search.op.refresh_ttl)
            if bounded:
                filter_sql, filter_params = search.filter.sql("s", containment=False)
                shapes.setdefault(shape_of(filter_sql, filter_params), []).append(
                    (search, filter_params)
                )
                continue
            sql, search_params = self._search_branch(
                search, queries, exact=search.position in exact
            )
            branches.append(sql)
            params += search_params
        for shape, group in shapes.items():
            sql, search_params = self._bounded_searches_branch(shape, group)
            branches.append(sql)
            params += search_params
        for position, listing in self.listings if only is None else []:
            sql, listing_params = self._listing_branch(position, listing)
            branches.append(sql)
            params += listing_params
        if not branches:
            return None
        union = "\nUNION ALL\n".join(f"({b})" for b in branches)
        if refresh_any:
            text = f"""WITH results AS ({union}),
            refreshed AS (
                UPDATE {n.store} AS s SET expires_at = {REFRESHED_EXPIRY}
                FROM results AS r
                WHERE r.refresh AND r.key IS NOT NULL AND s.prefix = r.prefix AND s.key = r.key
                  AND s.expires_at IS NOT NULL AND s.ttl_minutes IS NOT NULL
            )
            SELECT * FROM results"""
        else:
            text = f"SELECT * FROM ({union}) AS results"
        # Gets have one text for any number of keys, bounded searches one per filter shape:
        # prepared, planned once. Other searches depend on their values (LIKE prefixes,
        # expression indexes, vectors), so they are planned each time.
        return Query(text, params, fetch=True, prepare=None if stable else False)

    def _bounded_searches_branch(
        self, shape: tuple[str, tuple[type, ...]], group: list[tuple[_Search, list[Any]]]
    ) -> tuple[str, list[Any]]:
        """Searches whose filters share `shape`, each under a prefix holding at most
        BOUNDED_PREFIX_ITEMS items: one branch whatever their number (see
        `_bounded_searches_sql`)."""
        text, lists = _bounded_searches_sql(self.names.store, *shape)
        searches = [search for search, _ in group]
        return text, [
            [s.position for s in searches],
            [ns_text(s.op.namespace_prefix) for s in searches],
            [bool(s.op.refresh_ttl) for s in searches],
            [s.op.limit for s in searches],
            [s.op.offset for s in searches],
            *columnar_arrays([p for _, p in group], lists),
        ]

    def _search_branch(
        self, search: _Search, queries: list[str], *, exact: bool
    ) -> tuple[str, list[Any]]:
        op = search.op
        n = self.names
        ns_sql, ns_params = _prefix_condition("s", op.namespace_prefix)
        filter_sql, filter_params = search.filter.sql("s")
        limit, offset = op.limit, op.offset
        if search.query_index is None or self.index is None:
            return (
                f"""SELECT %s::int AS op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
                       NULL::float8 AS score, %s::bool AS refresh,
                       row_number() OVER (ORDER BY s.updated_at DESC, s.prefix, s.key) AS rank
                FROM {n.store} AS s
                WHERE {ns_sql} AND {filter_sql} AND {live("s")}
                ORDER BY s.updated_at DESC, s.prefix, s.key
                LIMIT %s OFFSET %s""",
                [search.position, bool(op.refresh_ttl), *ns_params, *filter_params, limit, offset],
            )
        index = self.index
        qvec = queries[search.query_index]
        vtype = index.vector_type
        distance = f"(sv.embedding {index.operator} %s::{vtype})"
        order = f"{distance} + 0" if exact else distance  # `+ 0`: no ANN index, exact order
        fan_out = max(1, len(index.fields))
        candidates = (limit + offset) * fan_out * 2 + 1
        score = index.score_sql("best.dist")
        return (
            f"""SELECT %s::int AS op, s.prefix, s.key, s.value, s.created_at, s.updated_at,
                   {score} AS score, %s::bool AS refresh,
                   row_number() OVER (ORDER BY best.dist, s.prefix, s.key) AS rank
            FROM (
                SELECT c.prefix, c.key, min(c.dist) AS dist
                FROM (
                    SELECT sv.prefix, sv.key, {distance} AS dist
                    FROM {n.vectors} AS sv
                    JOIN {n.store} AS s ON s.prefix = sv.prefix AND s.key = sv.key
                    WHERE {ns_sql} AND {filter_sql} AND {live("s")}
                    ORDER BY {order}
                    {"" if exact else "LIMIT %s"}
                ) AS c
                GROUP BY c.prefix, c.key
                ORDER BY dist, c.prefix, c.key
                LIMIT %s OFFSET %s
            ) AS best
            JOIN {n.store} AS s ON s.prefix = best.prefix AND s.key = best.key""",
            [
                search.position,
                bool(op.refresh_ttl),
                qvec,
                *ns_params,
                *filter_params,
                qvec,
                *([] if exact else [candidates]),
                limit,
                offset,
            ],
        )

    def _listing_branch(self, position: int, op: ListNamespacesOp) -> tuple[str, list[Any]]:
        conditions = [live("s")]
        params: list[Any] = []
        for condition in op.match_conditions or ():
            if not condition.path:
                continue
            conditions.append("s.prefix ~ %s")
            params.append(_match_pattern(condition.path, condition.match_type))
        depth = op.max_depth
        truncated = (
            "s.prefix"
            if depth is None
            else "array_to_string((string_to_array(s.prefix, '.'))[1:%s::int], '.')"
        )
        head_params: list[Any] = [position]
        if depth is not None:
            head_params.append(depth)
        return (
            f"""SELECT %s::int AS op, t.ns AS prefix, NULL::text AS key, NULL::jsonb AS value,
                   NULL::timestamptz AS created_at, NULL::timestamptz AS updated_at,
                   NULL::float8 AS score, false AS refresh,
                   row_number() OVER (ORDER BY t.ns) AS rank
            FROM (
                SELECT DISTINCT {truncated} COLLATE "C" AS ns
                FROM {self.names.store} AS s
                WHERE {" AND ".join(conditions)}
            ) AS t
            ORDER BY t.ns
            LIMIT %s OFFSET %s""",
            [*head_params, *params, op.limit, op.offset],
        )

    def _writes(self, vectors: list[str]) -> Query:
        n = self.names
        deletes = [(ns, key) for (ns, key), op in self.puts.items() if op.value is None]
        upserts = [(ns, key, op) for (ns, key), op in self.puts.items() if op.value is not None]
        ttls = [_ttl(op.ttl) for _, _, op in upserts]
        # Only the parts the batch needs: an empty CTE still costs the server a plan and a scan.
        parts: list[str] = []
        params: list[Any] = []
        if deletes:
            parts.append(
                f"""gone AS (
                DELETE FROM {n.store} AS s
                USING unnest(%b::text[], %b::text[]) AS d(prefix, key)
                WHERE s.prefix = d.prefix AND s.key = d.key
            )"""
            )
            params += [[ns_text(ns) for ns, _ in deletes], [key for _, key in deletes]]
        if upserts and not deletes and self.index is None and len(upserts) <= MAX_VALUES_ROWS:
            # The common case (a few puts, no vectors): VALUES rows, no CTE and no arrays to
            # build or unnest (a single put: ~145 against ~175 us of statement).
            for (ns, key, _), ttl in zip(upserts, ttls, strict=True):
                params += [ns_text(ns), key, self.values[(ns, key)]]
                if ttl is not None:
                    params += [ttl, ttl, ttl]
            pattern = tuple(ttl is not None for ttl in ttls)
            return Query(_upsert_rows_sql(n.store, pattern), params)
        if upserts:
            parts.append(
                f"""upserted AS (
                INSERT INTO {n.store} AS s (prefix, key, value, created_at, updated_at,
                                            expires_at, ttl_minutes, ttl_exact_minutes,
                                            ttl_exact_at)
                SELECT u.prefix, u.key, u.value::jsonb, now(), now(),
                       now() + make_interval(secs => u.ttl * 60), ceil(u.ttl)::int, u.ttl,
                       now()
                FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[])
                     AS u(prefix, key, value, ttl)
                ON CONFLICT (prefix, key) DO UPDATE
                SET value = EXCLUDED.value, updated_at = now(), expires_at = EXCLUDED.expires_at,
                    ttl_minutes = EXCLUDED.ttl_minutes,
                    ttl_exact_minutes = EXCLUDED.ttl_exact_minutes,
                    ttl_exact_at = EXCLUDED.ttl_exact_at
            )"""
            )
            params += [
                [ns_text(ns) for ns, _, _ in upserts],
                [key for _, key, _ in upserts],
                [self.values[(ns, key)] for ns, key, _ in upserts],
                ttls,
            ]
        if self.index is not None and upserts:
            # Every upserted item loses the vectors its new value no longer has.
            parts.append(
                f"""stale AS (
                    DELETE FROM {n.vectors} AS v
                    USING unnest(%b::text[], %b::text[]) AS r(prefix, key)
                    WHERE v.prefix = r.prefix AND v.key = r.key
                      AND NOT EXISTS (
                          SELECT 1 FROM unnest(%b::text[], %b::text[], %b::text[])
                               AS f(prefix, key, field)
                          WHERE f.prefix = v.prefix AND f.key = v.key AND f.field = v.field_name)
                )"""
            )
            docs = self.documents
            params += [
                [ns_text(ns) for ns, _, _ in upserts],
                [key for _, key, _ in upserts],
                [ns_text(d[0]) for d in docs],
                [d[1] for d in docs],
                [d[2] for d in docs],
            ]
            parts.append(
                f"""embedded AS (
                    INSERT INTO {n.vectors}
                        (prefix, key, field_name, embedding, created_at, updated_at)
                    SELECT e.prefix, e.key, e.field, e.embedding::{self.index.vector_type},
                           now(), now()
                    FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[])
                         AS e(prefix, key, field, embedding)
                    ON CONFLICT (prefix, key, field_name) DO UPDATE
                    SET embedding = EXCLUDED.embedding, updated_at = now()
                )"""
            )
            params += [
                [ns_text(d[0]) for d in docs],
                [d[1] for d in docs],
                [d[2] for d in docs],
                vectors,
            ]
        return Query("WITH " + ",\n".join(parts) + "\nSELECT 1", params)

    # -- results ---------------------------------------------------------------------------

    def _collect(
        self, rows: Rows, results: list[Result], *, only: set[int] | None = None
    ) -> set[int]:
        """Fill `results` from read rows (of the searches in `only`, on a second round);
        return the searches to run again: ANN searches that came back short, and searches
        of a prefix beyond the bound."""
        by_op: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_op.setdefault(row[0], []).append(row)
        for position, _ in self.gets if only is None else []:
            for row in by_op.get(position, []):
                results[position] = _item(row)
        short: set[int] = set()
        for search in self.searches:
            if only is not None and search.position not in only:
                continue
            found = sorted(by_op.get(search.position, []), key=lambda r: r[8])
            if found and found[0][1] is None:  # the marker of a prefix beyond the bound
                if len(self.broad) >= MAX_BROAD_PREFIXES:
                    self.broad.clear()
                self.broad.add(ns_text(search.op.namespace_prefix))
                short.add(search.position)
                continue
            results[search.position] = [_search_item(r) for r in found]
            # Short: the ANN index stopped early, or a few items' many vectors filled the
            # candidate rows. The exact re-run ranks every matching vector, uncapped.
            if (
                search.query_index is not None
                and self.index is not None
                and len(found) < search.op.limit
            ):
                short.add(search.position)
        for position, _ in self.listings if only is None else []:
            found = sorted(by_op.get(position, []), key=lambda r: r[8])
            results[position] = [ns_tuple(r[1]) for r in found]
        return short


@functools.lru_cache(maxsize=512)
def _bounded_searches_sql(
    store: str, filter_sql: str, types: tuple[type, ...]
) -> tuple[str, tuple[bool, ...]]:
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
    bound = BOUNDED_PREFIX_ITEMS
    sql, columns, lists = columnar_sql(filter_sql, types, "q")
    fields = "".join(f", f{k}" for k in range(len(columns)))
    arrays = ", ".join(
        f"(SELECT {c})"
        for c in ["%b::int[]", "%b::text[]", "%b::bool[]", "%b::int8[]", "%b::int8[]", *columns]
    )
    text = f"""SELECT q.op, r.prefix, r.key, r.value, r.created_at, r.updated_at,
               NULL::float8 AS score, q.refresh, coalesce(r.rank, 0) AS rank
        FROM unnest({arrays}) AS q(op, ns, refresh, lim, skip{fields})
        CROSS JOIN LATERAL (
            SELECT count(*) AS items, array_agg(p.p) AS rows FROM (
                SELECT p FROM {store} AS p
                WHERE p.prefix ~>=~ q.ns AND p.prefix ~<~ (q.ns || '/')
                ORDER BY p.prefix USING ~<~ LIMIT {bound + 1}) AS p
        ) AS counted
        LEFT JOIN LATERAL (
            SELECT s.prefix, s.key, s.value, s.created_at, s.updated_at,
                   row_number() OVER (ORDER BY s.updated_at DESC, s.prefix, s.key) AS rank
            FROM unnest(counted.rows) AS s
            WHERE counted.items <= {bound}
              AND (s.prefix = q.ns OR s.prefix ~>=~ (q.ns || '.')) AND {sql} AND {live("s")}
            ORDER BY s.updated_at DESC, s.prefix, s.key
            LIMIT q.lim OFFSET q.skip
        ) AS r ON true
        WHERE r.key IS NOT NULL OR counted.items > {bound}"""
    return text, lists


_ROW_WITH_TTL = (
    "(%s, %s, %s::jsonb, now(), now(), now() + make_interval(secs => %s::float8 * 60),"
    " ceil(%s::float8)::int, %s::float8, now())"
)
# Without a TTL nothing expires; the row is otherwise what the unnest form writes for it.
_ROW_WITHOUT_TTL = "(%s, %s, %s::jsonb, now(), now(), NULL, NULL, NULL, now())"


@functools.lru_cache(maxsize=512)
def _upsert_rows_sql(store: str, with_ttl: tuple[bool, ...]) -> str:
    """The upsert of one VALUES row per item (`with_ttl`: whether each has a TTL), built once
    per table and pattern."""
    values = ", ".join(_ROW_WITH_TTL if ttl else _ROW_WITHOUT_TTL for ttl in with_ttl)
    return f"""INSERT INTO {store} AS s (prefix, key, value, created_at, updated_at,
                                    expires_at, ttl_minutes, ttl_exact_minutes, ttl_exact_at)
        VALUES {values}
        ON CONFLICT (prefix, key) DO UPDATE
        SET value = EXCLUDED.value, updated_at = now(), expires_at = EXCLUDED.expires_at,
            ttl_minutes = EXCLUDED.ttl_minutes,
            ttl_exact_minutes = EXCLUDED.ttl_exact_minutes,
            ttl_exact_at = EXCLUDED.ttl_exact_at"""


def _item(row: Sequence[Any]) -> Item:
    _, prefix, key, value, created_at, updated_at = row[:6]
    return Item(
        value=value,
        key=key,
        namespace=ns_tuple(prefix),
        created_at=cast(datetime, created_at),
        updated_at=cast(datetime, updated_at),
    )


def _search_item(row: Sequence[Any]) -> SearchItem:
    _, prefix, key, value, created_at, updated_at, score = row[:7]
    return SearchItem(
        namespace=ns_tuple(prefix),
        key=key,
        value=value,
        created_at=created_at,
        updated_at=updated_at,
        score=None if score is None else float(score),
    )


def plan_batch(
    ops: Iterable[Op],
    names: StoreNames,
    index: VectorIndex | None,
    broad: set[str] | None = None,
) -> Plan:
    """Validate `ops` and plan them; raises a typed error before anything is sent. `broad`:
    the store's set of prefixes known to be beyond the bounded read, kept up to date."""
    ops = list(ops)
    plan = Plan(size=len(ops), names=names, index=index, broad=set() if broad is None else broad)
    for position, op in enumerate(ops):
        op = _with_tuple_namespace(op)
        validate_op_namespace(op)
        if isinstance(op, GetOp):
            _key(op.key)
            plan.gets.append((position, op))
        elif isinstance(op, PutOp):
            _put_namespace(op.namespace)
            key = _key(op.key)
            if op.value is not None:
                plan.values[(op.namespace, key)] = _value_json(op.value)
                _ttl(op.ttl)
                _index_fields(op.index)
            plan.puts.pop((op.namespace, key), None)  # last wins, in batch order
            plan.puts[(op.namespace, key)] = op
        elif isinstance(op, SearchOp):
            _count(op.limit, "limit")
            _count(op.offset, "offset")
            compiled = compile_filter(op.filter, number_fn=names.number)
            query_index = None
            if op.query and index is not None:
                if not isinstance(op.query, str):
                    raise InvalidValueError("a search query must be a string")
                query_index = len(plan.queries)
                plan.queries.append(op.query)
            plan.searches.append(_Search(position, op, query_index, compiled))
        elif isinstance(op, ListNamespacesOp):
            _count(op.limit, "limit")
            _count(op.offset, "offset")
            if op.max_depth is not None:
                _count(op.max_depth, "max_depth")
            plan.listings.append((position, op))
        else:
            raise InvalidValueError(f"unknown store op {type(op).__name__}")
    if index is not None:
        for (namespace, key), op in plan.puts.items():
            if op.value is not None:
                for field_name, text in index.texts_for(op.value, op.index):
                    plan.documents.append((namespace, key, field_name, text))
    return plan
