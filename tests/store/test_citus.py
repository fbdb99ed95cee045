"""The store on a Citus cluster: how `setup(distributed=True)` shards it, which statements
run on one shard, and what the official store can do on tables this package distributed.

The cluster is the one ``CHECKPOINT_PG_TEST_CITUS_DSN`` names, or a throwaway one started for
the session when Citus is installed here (tests/support/citus.py); without either these tests
skip, saying why. Each test gets a schema of its own in the coordinator's database. Routing is
read from EXPLAIN: Citus prints ``Task Count: N`` for every distributed step of a plan, so a
statement whose every step has one task touches one shard.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any, ClassVar

import psycopg
import pytest
from langgraph.store.postgres import PostgresStore as OfficialStore
from psycopg import sql
from psycopg.rows import dict_row

from checkpoint_pg.errors import CitusUnavailableError, SchemaMismatchError
from store import PostgresStore
from tests.cli.conftest import invoke
from tests.support.citus import citus_dsn_from_env, cluster, cluster_unavailable

_schemas = count()


@pytest.fixture(scope="session")
def coordinator() -> Iterator[str]:
    """The coordinator's DSN: the named cluster's, or a cluster started for the session."""
    if citus_dsn_from_env() is None and (why := cluster_unavailable()) is not None:
        pytest.skip(why)
    with cluster() as dsn:
        yield dsn


@pytest.fixture
def citus(coordinator: str) -> Iterator[str]:
    """A DSN whose search_path is a new schema in the coordinator's database."""
    name = f"citus_store_{next(_schemas)}_{id(coordinator) % 10**6}"
    with psycopg.connect(coordinator, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        try:
            yield psycopg.conninfo.make_conninfo(coordinator, options=f"-c search_path={name}")
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


class RecordingCursor(psycopg.Cursor[Any]):
    """Keeps every statement the store sends, with its parameters, to EXPLAIN afterwards."""

    sent: ClassVar[list[tuple[str, Any]]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        RecordingCursor.sent.append((str(query), params))
        return super().execute(query, params, **kwargs)


@pytest.fixture
def distributed(citus: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to a schema whose store tables are distributed, with items
    in twenty namespaces."""
    with psycopg.connect(citus, autocommit=True, cursor_factory=RecordingCursor) as conn:
        store = PostgresStore(conn)
        store.setup(distributed=True)
        for user in range(20):
            store.put(("memories", f"u{user}"), "k", {"n": user})
        store.put(("memories", "u1"), "ttl", {"n": 1}, ttl=5)
        store.put(("memories", "u1", "deep"), "k", {"n": 1})
        yield conn


def distribution(conn: psycopg.Connection[Any], table: str) -> tuple[str, str | None] | None:
    """How Citus distributes `table`: ('h', column), ('n', None) for a reference table."""
    row = conn.execute(
        "SELECT partmethod::text, CASE WHEN partmethod = 'h'"
        " THEN column_to_column_name(logicalrelid, partkey) END,"
        " colocationid FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)",
        [table],
    ).fetchone()
    return None if row is None else (row[0], row[1])


def task_counts(conn: psycopg.Connection[Any], call: Callable[[PostgresStore], Any]) -> list[int]:
    """The ``Task Count`` of every distributed step of every statement `call` sends."""
    store = PostgresStore(conn)
    store.batch([])  # nothing to send
    RecordingCursor.sent.clear()
    call(store)
    statements = list(RecordingCursor.sent)
    assert statements, "the call sent no statement"
    counts: list[int] = []
    for text, params in statements:
        plan = conn.execute("EXPLAIN " + text, params).fetchall()
        counts += [int(n) for (line,) in plan for n in re.findall(r"Task Count: (\d+)", line)]
    return counts


# -- setup ----------------------------------------------------------------------------------


def test_distributed_setup_shards_the_store_by_prefix(citus: str) -> None:
    with psycopg.connect(citus, autocommit=True) as conn:
        PostgresStore(conn).setup(distributed=True)
        assert distribution(conn, "store") == ("h", "prefix")


def test_distributed_setup_makes_the_migration_tables_reference_tables(citus: str) -> None:
    with psycopg.connect(citus, autocommit=True) as conn:
        PostgresStore(conn).setup(distributed=True)
        for table in ("store_migrations", "store_pg_migrations"):
            assert distribution(conn, table) == ("n", None), table


def test_distributed_setup_colocates_store_vectors_with_the_store(citus: str) -> None:
    # The cluster has no pgvector: a table of store_vectors' keys stands in for it.
    with psycopg.connect(citus, autocommit=True) as conn:
        PostgresStore(conn).setup()
        conn.execute(
            "CREATE TABLE store_vectors (prefix text, key text, field_name text,"
            " PRIMARY KEY (prefix, key, field_name),"
            " FOREIGN KEY (prefix, key) REFERENCES store (prefix, key) ON DELETE CASCADE)"
        )
        PostgresStore(conn).setup(distributed=True)
        assert distribution(conn, "store_vectors") == ("h", "prefix")
        groups = conn.execute(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition"
            " WHERE logicalrelid IN ('store'::regclass, 'store_vectors'::regclass)"
        ).fetchone()
        assert groups == (1,)


def test_distributed_setup_twice_changes_nothing_the_second_time(citus: str) -> None:
    with psycopg.connect(citus, autocommit=True) as conn:
        PostgresStore(conn).setup(distributed=True)
        PostgresStore(conn).put(("a",), "k", {"v": 1})
        before = conn.execute("SELECT v FROM store_migrations ORDER BY v").fetchall()
        PostgresStore(conn).setup(distributed=True)
        PostgresStore(conn).setup()
        assert conn.execute("SELECT v FROM store_migrations ORDER BY v").fetchall() == before
        assert distribution(conn, "store") == ("h", "prefix")
        assert PostgresStore(conn).get(("a",), "k").value == {"v": 1}  # type: ignore[union-attr]


def test_a_store_distributed_by_another_column_is_refused(citus: str) -> None:
    with psycopg.connect(citus, autocommit=True) as conn:
        PostgresStore(conn).setup()
        conn.execute("SELECT create_distributed_table('store', 'key')")
        with pytest.raises(SchemaMismatchError, match="store"):
            PostgresStore(conn).setup(distributed=True)


def test_the_setup_command_with_distributed_shards_the_store(citus: str) -> None:
    assert invoke("setup", "--dsn", citus, "--distributed").exit_code == 0
    with psycopg.connect(citus, autocommit=True) as conn:
        assert distribution(conn, "store") == ("h", "prefix")


# -- routing: one namespace, one shard ------------------------------------------------------


def test_a_get_runs_on_one_shard(distributed: psycopg.Connection[Any]) -> None:
    assert task_counts(distributed, lambda s: s.get(("memories", "u1"), "k")) == [1]


def test_a_get_that_refreshes_a_ttl_runs_on_one_shard(
    distributed: psycopg.Connection[Any],
) -> None:
    counts = task_counts(distributed, lambda s: s.get(("memories", "u1"), "ttl"))
    assert counts == [1]


def test_a_put_runs_on_one_shard(distributed: psycopg.Connection[Any]) -> None:
    assert task_counts(distributed, lambda s: s.put(("memories", "u1"), "k", {"n": 2})) == [1]


def test_a_put_with_a_ttl_runs_on_one_shard(distributed: psycopg.Connection[Any]) -> None:
    counts = task_counts(distributed, lambda s: s.put(("memories", "u1"), "t", {}, ttl=1))
    assert counts == [1]


def test_a_delete_runs_on_one_shard(distributed: psycopg.Connection[Any]) -> None:
    assert task_counts(distributed, lambda s: s.delete(("memories", "u1"), "k")) == [1]


def test_a_search_in_a_namespace_asks_every_shard(distributed: psycopg.Connection[Any]) -> None:
    # A search covers the namespaces below its prefix too, which hash to other shards.
    shards = distributed.execute(
        "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'store'::regclass"
    ).fetchone()
    assert shards is not None
    assert shards[0] > 1
    counts = task_counts(distributed, lambda s: s.search(("memories", "u1"), refresh_ttl=False))
    assert shards[0] in counts
    found = PostgresStore(distributed).search(("memories", "u1"))
    assert sorted((i.namespace, i.key) for i in found) == [
        (("memories", "u1"), "k"),
        (("memories", "u1"), "ttl"),
        (("memories", "u1", "deep"), "k"),
    ]


def test_a_search_across_namespaces_pages_newest_first(
    distributed: psycopg.Connection[Any],
) -> None:
    store = PostgresStore(distributed)
    first = store.search(("memories",), filter={"n": {"$gte": 10}}, limit=4)
    rest = store.search(("memories",), filter={"n": {"$gte": 10}}, limit=100, offset=4)
    assert [i.value["n"] for i in first + rest] == list(range(19, 9, -1))


def test_namespaces_are_listed_from_every_shard(distributed: psycopg.Connection[Any]) -> None:
    found = PostgresStore(distributed).list_namespaces(prefix=("memories",), limit=100)
    assert len(found) == 21
    assert PostgresStore(distributed).list_namespaces(max_depth=1) == [("memories",)]


def test_the_ttl_sweep_deletes_expired_items_on_every_shard(
    distributed: psycopg.Connection[Any],
) -> None:
    distributed.execute("UPDATE store SET expires_at = now() - interval '1 second'")
    distributed.execute("UPDATE store SET expires_at = NULL WHERE prefix = 'memories.u1'")
    assert PostgresStore(distributed).sweep_ttl(batch_size=3) == 20
    assert distributed.execute("SELECT count(*) FROM store").fetchone() == (2,)


# -- without Citus ----------------------------------------------------------------------------


@pytest.mark.nocitus("needs a database without the citus extension")
def test_distributed_setup_without_citus_raises_and_creates_nothing(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(CitusUnavailableError, match="citus extension"):
            PostgresStore(conn).setup(distributed=True)
        assert conn.execute("SELECT to_regclass('store')").fetchone() == (None,)


@pytest.mark.nocitus("needs a database without the citus extension")
def test_distributed_setup_without_citus_leaves_an_existing_store_as_it_was(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresStore(conn).setup()
        PostgresStore(conn).put(("a",), "k", {"v": 1})
        with pytest.raises(CitusUnavailableError):
            PostgresStore(conn).setup(distributed=True)
        assert PostgresStore(conn).get(("a",), "k").value == {"v": 1}  # type: ignore[union-attr]


@pytest.mark.nocitus("needs a database without the citus extension")
def test_the_setup_command_with_distributed_fails_without_citus(dsn: str) -> None:
    result = invoke("setup", "--dsn", dsn, "--distributed")
    assert result.exit_code == 1
    assert "citus extension" in result.output


# -- the official store on tables this package distributed ------------------------------------

# Each official call on a store this package set up with distributed=True: whether Citus runs
# it. The refused ones apply now() to a column where Citus allows only IMMUTABLE functions: in
# the DO UPDATE SET of its upsert (`updated_at = CURRENT_TIMESTAMP`), and in the TTL refresh
# that every get carries, and a refreshing search adds (`NOW() + ttl_minutes || ' minutes'`).
OFFICIAL_CALLS: list[tuple[str, Callable[[OfficialStore], Any], bool]] = [
    ("setup", lambda s: s.setup(), True),
    ("put", lambda s: s.put(("memories", "u1"), "new", {"n": 0}), False),
    ("get", lambda s: s.get(("memories", "u1"), "k"), False),
    ("get without refresh", lambda s: s.get(("memories", "u1"), "k", refresh_ttl=False), False),
    ("search", lambda s: s.search(("memories",)), False),
    ("search without refresh", lambda s: s.search(("memories",), refresh_ttl=False), True),
    ("list_namespaces", lambda s: s.list_namespaces(prefix=("memories",)), True),
    ("delete", lambda s: s.delete(("memories", "u1"), "k"), True),
    ("sweep_ttl", lambda s: s.sweep_ttl(), True),
]


@pytest.mark.parametrize(
    ("call", "runs"),
    [pytest.param(call, runs, id=name) for name, call, runs in OFFICIAL_CALLS],
)
def test_what_the_official_store_can_do_on_distributed_tables(
    distributed: psycopg.Connection[Any], call: Callable[[OfficialStore], Any], runs: bool
) -> None:
    with psycopg.connect(
        distributed.info.dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as conn:
        official = OfficialStore(conn)
        if runs:
            call(official)
        else:
            with pytest.raises(psycopg.errors.FeatureNotSupported, match=r"IMMUTABLE|STABLE"):
                call(official)


def test_the_official_store_reads_what_ours_wrote_when_it_refreshes_nothing(
    distributed: psycopg.Connection[Any],
) -> None:
    with psycopg.connect(distributed.info.dsn, autocommit=True, row_factory=dict_row) as conn:
        found = OfficialStore(conn).search(("memories", "u1"), refresh_ttl=False)
    assert sorted(i.key for i in found) == ["k", "k", "ttl"]
