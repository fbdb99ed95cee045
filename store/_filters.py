"""Search filters to SQL, matching LangGraph's `InMemoryStore` result for result.

The in-memory store compares ``item.value.get(key)`` with each filter entry:
- a dict of ``$`` operators applies every operator to the value;
- a plain dict matches an object whose listed keys match, recursively (missing keys are None);
- a list matches a list of the same length whose elements match pairwise;
- anything else matches by equality (a missing key equals None).
Range operators compare numbers as numbers (``float(value)``), never as text.

Each filter becomes an exact predicate, plus, where the filter implies it, a containment
document (``value @> …``) that the GIN index on ``value`` answers, so equality filters never
scan the table. Filter keys reach SQL only as parameters.

Extensions beyond the in-memory store: ``$in``, ``$nin`` (membership in a list of values) and
``$exists`` (``True``: the key is present, ``False``: it is absent).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checkpoint_pg._json import jsonb_text, lone_surrogate
from store.errors import InvalidFilterError

RANGE_OPERATORS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", *RANGE_OPERATORS})
# Each level of a nested filter repeats the path so far in its SQL: a deep filter grows
# quadratically, and PostgreSQL takes at most 65535 parameters per statement.
MAX_FILTER_DEPTH = 32
MAX_FILTER_PARAMS = 20_000


@dataclass
class CompiledFilter:
    """SQL for one search's filter: a conjunction of predicates and their parameters."""

    predicates: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    containment: dict[str, Any] = field(default_factory=dict)

    def sql(self, alias: str, *, containment: bool = True) -> tuple[str, list[Any]]:
        """The whole filter as one predicate on `alias`.value (TRUE when empty). The
        containment only lets the GIN index find candidates (the predicates are exact):
        leave it out where rows are read otherwise."""
        parts, params = [], []
        if self.containment and containment:
            parts.append(f"{alias}.value @> %s::jsonb")
            params.append(_dumps(self.containment, "filter"))
        parts.extend(p.replace("{v}", f"{alias}.value") for p in self.predicates)
        params.extend(self.params)
        return (" AND ".join(parts) if parts else "TRUE"), params


_PLACEHOLDER = re.compile(r"%s(::jsonb\[\]|::\w+)?")
_ARRAY_TYPES = {str: "text[]", float: "float8[]", int: "int8[]", bool: "bool[]"}


def shape_of(sql: str, params: Sequence[Any]) -> tuple[str, tuple[type, ...]]:
    """What filters must share to be answered by one `columnar` statement: the same SQL and
    the same Python type at each parameter."""
    return sql, tuple(type(p) for p in params)


@functools.lru_cache(maxsize=512)
def columnar_sql(
    sql: str, types: tuple[type, ...], source: str
) -> tuple[str, tuple[str, ...], tuple[bool, ...]]:
    """Rewrite one filter shape's SQL (``%s`` placeholders, parameters of Python `types`) to
    read its parameters from columns ``{source}.f0``, ``f1``… of an ``unnest`` of arrays, one
    array per placeholder. Returns the SQL, each array's placeholder with its cast (for the
    ``unnest``) and which arrays hold lists: a ``jsonb[]`` parameter (a list of JSON texts)
    travels as one JSON array text per row (see `columnar_arrays`)."""
    columns: list[str] = []
    lists: list[bool] = []
    pieces: list[str] = []
    last = 0
    for k, match in enumerate(_PLACEHOLDER.finditer(sql)):
        cast = match.group(1) or ""
        column = f"{source}.f{k}"
        if cast == "::jsonb[]":
            expr = f"ARRAY(SELECT jsonb_array_elements({column}::jsonb))"
            columns.append("%b::text[]")
        elif cast == "::jsonb":  # parsed once per array, not once per row compared
            expr = column
            columns.append("%b::text[]::jsonb[]")
        else:
            expr = column + cast
            columns.append(f"%b::{_ARRAY_TYPES[types[k]]}")
        lists.append(cast == "::jsonb[]")
        pieces += [sql[last : match.start()], expr]
        last = match.end()
    pieces.append(sql[last:])
    return "".join(pieces), tuple(columns), tuple(lists)


def columnar_arrays(rows: Sequence[Sequence[Any]], lists: Sequence[bool]) -> list[list[Any]]:
    """The arrays of `columnar_sql`'s columns, from each filter's parameters (`rows`)."""
    return [
        ["[" + ",".join(row[k]) + "]" for row in rows] if is_list else [row[k] for row in rows]
        for k, is_list in enumerate(lists)
    ]


def _dumps(value: Any, what: str) -> str:
    return jsonb_text(value, f"{what} value", InvalidFilterError)


def _equal_texts(wanted: Any, where: str) -> list[str]:
    """The JSON texts of every value Python finds equal to scalar `wanted`, as the in-memory
    store compares: ``True == 1 == 1.0`` and ``False == 0 == 0.0`` (JSONB tells them apart)."""
    texts = [_dumps(wanted, where)]
    if isinstance(wanted, bool):
        texts.append(_dumps(int(wanted), where))
    elif isinstance(wanted, (int, float)) and wanted in (0, 1):
        texts.append(_dumps(bool(wanted), where))
    return texts


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        number = float(value)
    except OverflowError:
        raise InvalidFilterError(
            f"{where}: a number of {len(str(value))} digits is beyond a float's range"
        ) from None
    except (TypeError, ValueError):
        raise InvalidFilterError(
            f"{where}: range operators compare numbers, and {value!r} is not one"
        ) from None
    if math.isnan(number):
        raise InvalidFilterError(f"{where}: NaN cannot be compared")
    return number


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise InvalidFilterError(f"{where}: filter keys must be strings, not {type(key).__name__}")
    if "\x00" in key:
        raise InvalidFilterError(f"{where}: a filter key contains a NUL character")
    bad = lone_surrogate(key)
    if bad is not None:
        raise InvalidFilterError(
            f"{where}: a filter key contains a lone surrogate (U+{ord(bad):04X}), "
            "which is not valid Unicode"
        )
    return key


def compile_filter(filter: Mapping[str, Any] | None, *, number_fn: str) -> CompiledFilter:
    """Compile a search filter; `number_fn` is the (quoted) JSON-to-number SQL function."""
    out = CompiledFilter()
    if not filter:
        return out
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"a filter must be a dict, not {type(filter).__name__}")
    for key, wanted in filter.items():
        name = _key(key, "filter")
        contained = _match(out, [name], wanted, number_fn)
        if contained is not _NOTHING:
            out.containment[name] = contained
    if len(out.params) > MAX_FILTER_PARAMS:
        raise InvalidFilterError(
            f"the filter is too large: it needs {len(out.params)} SQL parameters, "
            f"at most {MAX_FILTER_PARAMS} are allowed"
        )
    return out


_NOTHING = object()


Path = list["str | int"]


def _expr(path: Path, out: CompiledFilter) -> str:
    """SQL for the JSON value at `path` under ``{v}`` (NULL when absent); adds parameters."""
    steps = []
    for step in path:
        steps.append(" -> %s::int" if isinstance(step, int) else " -> %s")
        out.params.append(step)
    return "({v}" + "".join(steps) + ")"


def _match(out: CompiledFilter, path: Path, wanted: Any, number_fn: str) -> Any:
    """Add the predicates for `wanted` at `path`; return what containment it implies.

    The return value is the JSON fragment an item must contain at `path` for the filter to
    hold (a necessary condition), or `_NOTHING` when no such fragment exists.
    """
    where = "filter on " + ".".join(str(p) for p in path)
    if len(path) > MAX_FILTER_DEPTH:
        raise InvalidFilterError(
            f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep "
            f"(under {'.'.join(str(p) for p in path[:3])}...)"
        )
    if isinstance(wanted, Mapping) and any(str(k).startswith("$") for k in wanted):
        return _operators(out, path, wanted, number_fn, where)
    if isinstance(wanted, Mapping):
        implied: dict[str, Any] = {}
        for sub_key, sub_wanted in wanted.items():
            sub_path: Path = [*path, _key(sub_key, where)]
            sub = _match(out, sub_path, sub_wanted, number_fn)
            if sub is not _NOTHING:
                implied[str(sub_key)] = sub
        # Even an empty dict requires an object there, as the in-memory store does.
        out.predicates.append(f"jsonb_typeof({_expr(path, out)}) = 'object'")
        return implied if implied else _NOTHING
    if isinstance(wanted, (list, tuple)):
        out.predicates.append(
            f"jsonb_typeof({_expr(path, out)}) = 'array'"
            f" AND jsonb_array_length({_expr(path, out)}) = %s::int"
        )
        out.params.append(len(wanted))
        for index, element in enumerate(wanted):
            _match(out, [*path, index], element, number_fn)
        return _NOTHING
    texts = _equal_texts(wanted, where)
    if len(texts) > 1:  # a boolean or 0/1: no one containment document implies it
        out.predicates.append(f"coalesce({_expr(path, out)}, 'null'::jsonb) = ANY(%s::jsonb[])")
        out.params.append(texts)
        return _NOTHING
    out.predicates.append(f"coalesce({_expr(path, out)}, 'null'::jsonb) = %s::jsonb")
    out.params.append(texts[0])
    return _NOTHING if wanted is None else wanted


def _operators(
    out: CompiledFilter, path: Path, ops: Mapping[str, Any], number_fn: str, where: str
) -> Any:
    implied: Any = _NOTHING
    for op, operand in ops.items():
        if op not in OPERATORS:
            raise InvalidFilterError(
                f"{where}: unknown operator {op!r}; use one of {', '.join(sorted(OPERATORS))}"
            )
        if op in RANGE_OPERATORS:
            out.predicates.append(f"{number_fn}({_expr(path, out)}) {RANGE_OPERATORS[op]} %s")
            out.params.append(_number(operand, where))
        elif op in ("$eq", "$ne"):
            texts = _equal_texts(operand, where)
            comparison = "= ANY" if op == "$eq" else "<> ALL"
            out.predicates.append(
                f"coalesce({_expr(path, out)}, 'null'::jsonb) {comparison}(%s::jsonb[])"
            )
            out.params.append(texts)
            if (
                op == "$eq"
                and len(texts) == 1
                and operand is not None
                and not isinstance(operand, (list, tuple))
            ):
                implied = operand
        elif op in ("$in", "$nin"):
            if not isinstance(operand, (list, tuple)):
                raise InvalidFilterError(f"{where}: {op} takes a list of values")
            negate = "NOT " if op == "$nin" else ""
            out.predicates.append(
                f"{negate}(coalesce({_expr(path, out)}, 'null'::jsonb) = ANY(%s::jsonb[]))"
            )
            out.params.append([text for v in operand for text in _equal_texts(v, where)])
        else:  # $exists
            if not isinstance(operand, bool):
                raise InvalidFilterError(f"{where}: $exists takes true or false")
            out.predicates.append(f"{_expr(path, out)} IS {'NOT ' if operand else ''}NULL")
    return implied
