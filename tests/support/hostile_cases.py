"""The shape of a hostile-input case, and table snapshots to prove what the database holds.

A `Case` names the surface it attacks, runs one call, and expects either a typed error whose
message names the problem (``error`` and ``match``) or success, checked by ``check`` reading the
value back. Around every case the tables are snapshotted (row count and an md5 of every row as
text, in a stable order): after an error they must be exactly as before; after a success,
exactly as before apart from the rows ``changes`` names, which ``check`` inspects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg
import pytest
from psycopg import sql

E = TypeVar("E")

# Rows a successful case may change: table -> (SQL predicate on the row, its parameters).
Changes = Mapping[str, tuple[str, Sequence[Any]]]

SURROGATE = "\ud800"


@dataclass(frozen=True)
class Case(Generic[E]):
    """One hostile input: what it attacks, the call, and the outcome it must have."""

    id: str
    surface: str
    run: Callable[[E], Any]
    error: type[BaseException] | None = None
    match: str = ""
    check: Callable[[E, Any], Any] | None = None
    changes: Callable[[E], Changes] | None = None

    def __post_init__(self) -> None:
        assert (self.error is None) == (self.match == ""), self.id
        assert self.error is None or self.check is None, self.id


@dataclass
class Snapshot:
    """Count and md5 of each table's rows, leaving out the rows a case may change."""

    tables: dict[str, tuple[int, str]] = field(default_factory=dict)


def snapshot(dsn: str, tables: Sequence[str], leave_out: Changes | None = None) -> Snapshot:
    leave_out = leave_out or {}
    out = Snapshot()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in tables:
            where, params = leave_out.get(table, ("FALSE", ()))
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                " FROM {} AS t WHERE NOT ({})"
            ).format(sql.Identifier(table), sql.SQL(where))  # type: ignore[arg-type]
            row = conn.execute(query, list(params)).fetchone()
            assert row is not None
            out.tables[table] = (int(row[0]), str(row[1]))
    return out


def count(dsn: str, table: str, where: str = "TRUE", params: Sequence[Any] = ()) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                sql.Identifier(table),
                sql.SQL(where),  # type: ignore[arg-type]
            ),
            list(params),
        ).fetchone()
    assert row is not None
    return int(row[0])


def nested_dicts(depth: int, leaf: Any = 1) -> dict[str, Any]:
    value: dict[str, Any] = {"n": leaf}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def same(got: Any, want: Any) -> bool:
    """Equal, with the same types all the way down; NaN equals NaN, and -0.0 is not 0.0."""
    if type(got) is not type(want):
        return False
    if isinstance(want, float):
        if math.isnan(want):
            return math.isnan(got)
        return bool(got == want and math.copysign(1.0, got) == math.copysign(1.0, want))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def ids(cases: Sequence[Case[Any]]) -> list[str]:
    seen = [f"{c.surface}:{c.id}" for c in cases]
    assert len(seen) == len(set(seen)), "case ids must be unique"
    return seen


def run_case(case: Case[E], env: E, dsn: str, tables: Sequence[str]) -> None:
    """Run one case: its typed error naming the problem, or its check; and in both cases
    the tables hold exactly what they held, apart from the rows the case says it changes."""
    leave_out = case.changes(env) if case.changes else None
    before = snapshot(dsn, tables, leave_out)
    if case.error is not None:
        with pytest.raises(case.error) as caught:
            case.run(env)
        assert case.match in str(caught.value)
    else:
        result = case.run(env)
        if case.check is not None:
            case.check(env, result)
    assert snapshot(dsn, tables, leave_out) == before
