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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from checkpoint_pg._runtime.jsonb import jsonb_text, lone_surrogate
from store._params import Params
from store._sql import StoreNames
from store.errors import InvalidFilterError

RANGE_OPERATORS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", *RANGE_OPERATORS})
# Each level of a nested filter repeats the path so far in its SQL: a deep filter grows
# quadratically, and PostgreSQL takes at most 65535 parameters per statement.
MAX_FILTER_DEPTH = 32
MAX_FILTER_PARAMS = 20_000


@dataclass
class CompiledFilter:
    """One search's filter: a conjunction of predicates, each a `psycopg.sql` template whose
    ``{v}`` is the JSON value and whose ``{}`` are its values in order (`slots`: each value
    and the cast it is compared under)."""

    predicates: list[str] = field(default_factory=list)
    slots: list[tuple[Any, str]] = field(default_factory=list)
    containment: dict[str, Any] = field(default_factory=dict)

    def slot(self, value: Any, cast: str = "") -> str:
        """Add a value; its place in a predicate's template."""
        self.slots.append((value, cast))
        return "{}"

    @property
    def template(self) -> str:
        """Every predicate, ANDed (TRUE when none)."""
        return " AND ".join(self.predicates) if self.predicates else "TRUE"

    def bind(self, params: Params, name: str) -> None:
        """Bind the values as `name`0, `name`1... and the containment as `name`_doc."""
        for k, (value, _) in enumerate(self.slots):
            params.values[f"{name}{k}"] = value
        if self.containment:
            params.values[f"{name}_doc"] = _dumps(self.containment, "filter")

    def form(self) -> Form:
        """What the filter's SQL depends on, its values aside (see `composed`)."""
        return self.template, tuple(cast for _, cast in self.slots), bool(self.containment)

    def shape(self) -> tuple[str, tuple[str, ...], tuple[type, ...]]:
        """What filters must share to be answered by one `columnar` statement: the same
        predicates, and the same cast and Python type at each value."""
        return (
            self.template,
            tuple(cast for _, cast in self.slots),
            tuple(type(value) for value, _ in self.slots),
        )

    def values(self) -> list[Any]:
        return [value for value, _ in self.slots]


_VALUE = sql.SQL("s.value")
_ARRAY_TYPES = {str: "text[]", float: "float8[]", int: "int8[]", bool: "bool[]"}

Shape = tuple[str, tuple[str, ...], tuple[type, ...]]
Form = tuple[str, tuple[str, ...], bool]


@functools.lru_cache(maxsize=1024)
def composed(form: Form, name: str, names: StoreNames) -> sql.Composable:
    """A filter of `form` as one predicate on ``s.value``, its values named as `bind` names
    them. The containment only lets the GIN index find candidates (the predicates are
    exact)."""
    template, casts, containment = form
    slots = [
        sql.Composed([sql.Placeholder(f"{name}{k}"), sql.SQL(cast)]) for k, cast in enumerate(casts)
    ]
    exact = sql.SQL(template).format(*slots, v=_VALUE, number=names.number)
    if not containment:
        return exact
    return sql.SQL("s.value @> {}::jsonb AND {}").format(sql.Placeholder(f"{name}_doc"), exact)


@dataclass(frozen=True)
class Columnar:
    """One filter shape reading its values from columns ``q.f0``, ``q.f1``... of an
    ``unnest`` of arrays, one array per value (`columnar`)."""

    predicate: sql.Composable
    arrays: tuple[str, ...]  # each array's type, for the unnest
    lists: tuple[bool, ...]  # which arrays hold JSON lists (see `columnar_arrays`)


@functools.lru_cache(maxsize=512)
def columnar(shape: Shape, names: StoreNames) -> Columnar:
    """`shape`'s predicate over the columns. A ``::jsonb[]`` value (a list of JSON texts)
    travels as one JSON array text per row; a ``::jsonb`` one as a jsonb[] array (parsed once
    per array, not once per row compared)."""
    template, casts, types = shape
    columns: list[sql.Composable] = []
    arrays: list[str] = []
    for k, (cast, kind) in enumerate(zip(casts, types, strict=True)):
        column = sql.SQL(f"q.f{k}")
        if cast == "::jsonb[]":
            columns.append(sql.SQL("ARRAY(SELECT jsonb_array_elements({}::jsonb))").format(column))
            arrays.append("text[]")
        elif cast == "::jsonb":
            columns.append(column)
            arrays.append("text[]::jsonb[]")
        else:
            columns.append(sql.Composed([column, sql.SQL(cast)]))
            arrays.append(_ARRAY_TYPES[kind])
    predicate = sql.SQL(template).format(*columns, v=_VALUE, number=names.number)
    return Columnar(predicate, tuple(arrays), tuple(c == "::jsonb[]" for c in casts))


def columnar_arrays(rows: Sequence[Sequence[Any]], lists: Sequence[bool]) -> list[list[Any]]:
    """The arrays of `columnar`'s columns, from each filter's values (`rows`)."""
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


def compile_filter(filter: Mapping[str, Any] | None) -> CompiledFilter:
    """Compile a search filter (range operators call the ``{number}`` function)."""
    out = CompiledFilter()
    if not filter:
        return out
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"a filter must be a dict, not {type(filter).__name__}")
    for key, wanted in filter.items():
        name = _key(key, "filter")
        contained = _match(out, [name], wanted)
        if contained is not _NOTHING:
            out.containment[name] = contained
    if len(out.slots) > MAX_FILTER_PARAMS:
        raise InvalidFilterError(
            f"the filter is too large: it needs {len(out.slots)} SQL parameters, "
            f"at most {MAX_FILTER_PARAMS} are allowed"
        )
    return out


_NOTHING = object()


Path = list["str | int"]


def _expr(path: Path, out: CompiledFilter) -> str:
    """SQL for the JSON value at `path` under ``{v}`` (NULL when absent); adds parameters."""
    steps = [" -> " + out.slot(step, "::int" if isinstance(step, int) else "") for step in path]
    return "({v}" + "".join(steps) + ")"


def _match(out: CompiledFilter, path: Path, wanted: Any) -> Any:
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
        return _operators(out, path, wanted, where)
    if isinstance(wanted, Mapping):
        implied: dict[str, Any] = {}
        for sub_key, sub_wanted in wanted.items():
            sub_path: Path = [*path, _key(sub_key, where)]
            sub = _match(out, sub_path, sub_wanted)
            if sub is not _NOTHING:
                implied[str(sub_key)] = sub
        # Even an empty dict requires an object there, as the in-memory store does.
        out.predicates.append(f"jsonb_typeof({_expr(path, out)}) = 'object'")
        return implied if implied else _NOTHING
    if isinstance(wanted, (list, tuple)):
        out.predicates.append(
            f"jsonb_typeof({_expr(path, out)}) = 'array'"
            f" AND jsonb_array_length({_expr(path, out)}) = {out.slot(len(wanted), '::int')}"
        )
        for index, element in enumerate(wanted):
            _match(out, [*path, index], element)
        return _NOTHING
    texts = _equal_texts(wanted, where)
    if len(texts) > 1:  # a boolean or 0/1: no one containment document implies it
        expr = _expr(path, out)
        out.predicates.append(
            f"coalesce({expr}, 'null'::jsonb) = ANY({out.slot(texts, '::jsonb[]')})"
        )
        return _NOTHING
    expr = _expr(path, out)
    out.predicates.append(f"coalesce({expr}, 'null'::jsonb) = {out.slot(texts[0], '::jsonb')}")
    return _NOTHING if wanted is None else wanted


def _operators(out: CompiledFilter, path: Path, ops: Mapping[str, Any], where: str) -> Any:
    implied: Any = _NOTHING
    for op, operand in ops.items():
        if op not in OPERATORS:
            raise InvalidFilterError(
                f"{where}: unknown operator {op!r}; use one of {', '.join(sorted(OPERATORS))}"
            )
        if op in RANGE_OPERATORS:
            expr = _expr(path, out)
            value = out.slot(_number(operand, where))
            out.predicates.append(f"{{number}}({expr}) {RANGE_OPERATORS[op]} {value}")
        elif op in ("$eq", "$ne"):
            texts = _equal_texts(operand, where)
            comparison = "= ANY" if op == "$eq" else "<> ALL"
            expr = _expr(path, out)
            wanted_sql = out.slot(texts, "::jsonb[]")
            out.predicates.append(f"coalesce({expr}, 'null'::jsonb) {comparison}({wanted_sql})")
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
            expr = _expr(path, out)
            texts = [text for v in operand for text in _equal_texts(v, where)]
            out.predicates.append(
                f"{negate}(coalesce({expr}, 'null'::jsonb) = ANY({out.slot(texts, '::jsonb[]')}))"
            )
        else:  # $exists
            if not isinstance(operand, bool):
                raise InvalidFilterError(f"{where}: $exists takes true or false")
            out.predicates.append(f"{_expr(path, out)} IS {'NOT ' if operand else ''}NULL")
    return implied
