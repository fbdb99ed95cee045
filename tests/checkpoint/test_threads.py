"""`list_threads`: pagination, metadata and idleness filters, counts and bytes, plan shapes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from checkpoint_pg import (
    AsyncPostgresSaver,
    InvalidConfigError,
    PostgresSaver,
    ThreadInfo,
    ThreadPage,
)
from checkpoint_pg._sql import list_threads_statement
from tests.checkpoint.helpers import checkpoint, config
from tests.checkpoint.plans import explain_nodes, scans
from tests.harness import DatabaseFactory

AGO = timedelta(days=30)


def put(
    saver: PostgresSaver,
    thread_id: str,
    *,
    ns: str = "",
    ts: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> str:
    """Store one checkpoint (after the thread's latest in `ns`); returns its id."""
    cp = checkpoint(values or {"n": 1})
    if ts is not None:
        cp["ts"] = ts.isoformat()
    latest = saver.get_tuple(config(thread_id, ns))
    parent = config(
        thread_id, ns, latest.config["configurable"]["checkpoint_id"] if latest else None
    )
    meta: Any = metadata or {"source": "loop", "step": 1}
    saved = saver.put(parent, cp, meta, cp["channel_versions"])
    return str(saved["configurable"]["checkpoint_id"])


def all_pages(saver: PostgresSaver, **kwargs: Any) -> list[ThreadInfo]:
    threads: list[ThreadInfo] = []
    after = None
    while True:
        page = saver.list_threads(after=after, **kwargs)
        threads += page.threads
        if page.next_after is None:
            return threads
        after = page.next_after


def test_an_empty_database_has_no_threads(sync_saver: PostgresSaver) -> None:
    page = sync_saver.list_threads()
    assert page == ThreadPage([], None)


def test_threads_come_by_thread_id_with_their_latest_checkpoint(
    sync_saver: PostgresSaver,
) -> None:
    for t in ("b", "a", "c"):
        put(sync_saver, t)
    latest_b = put(sync_saver, "b", metadata={"source": "loop", "step": 2, "who": "b"})

    page = sync_saver.list_threads()

    assert [t.thread_id for t in page.threads] == ["a", "b", "c"]
    assert page.next_after is None
    b = page.threads[1]
    assert b.latest_checkpoint_id == latest_b
    assert b.metadata == {"source": "loop", "step": 2, "who": "b"}
    assert b.checkpoints == 2
    assert b.latest_ts is not None
    assert abs(b.latest_ts - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_pages_follow_the_cursor_and_cover_every_thread_once(sync_saver: PostgresSaver) -> None:
    ids = [f"t{i:03d}" for i in range(25)]
    for t in ids:
        put(sync_saver, t)

    first = sync_saver.list_threads(limit=10)
    assert len(first) == 10
    assert first.next_after == "t009"
    assert [t.thread_id for t in all_pages(sync_saver, limit=10)] == ids
    # an exactly full last page says there is no next one
    assert sync_saver.list_threads(limit=25).next_after is None
    assert sync_saver.list_threads(limit=24).next_after == "t023"


def test_the_empty_thread_id_is_listed_first(sync_saver: PostgresSaver) -> None:
    put(sync_saver, "")
    put(sync_saver, "a")
    assert [t.thread_id for t in all_pages(sync_saver, limit=1)] == ["", "a"]


def test_counts_cover_every_namespace_and_bytes_every_table(
    sync_saver: PostgresSaver, dsn: str
) -> None:
    # random, so that TOAST compression leaves the sizes as they are
    put(sync_saver, "t", values={"doc": [secrets.token_hex(1000)]})
    put(sync_saver, "t", values={"doc": [secrets.token_hex(1000)]})
    sub = put(sync_saver, "t", ns="child:1")
    sync_saver.put_writes(config("t", "child:1", sub), [("ch", secrets.token_bytes(3000))], "t1")
    put(sync_saver, "other")

    info = {t.thread_id: t for t in sync_saver.list_threads().threads}["t"]

    assert info.checkpoints == 3
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            """SELECT (SELECT sum(pg_column_size(checkpoint) + pg_column_size(metadata))
                       FROM checkpoints WHERE thread_id = 't')
                    + (SELECT sum(pg_column_size(blob)) FROM checkpoint_blobs
                       WHERE thread_id = 't')
                    + (SELECT sum(pg_column_size(blob)) FROM checkpoint_writes
                       WHERE thread_id = 't')"""
        ).fetchone()
    assert row is not None
    assert info.bytes == row[0]
    assert info.bytes > 5000


def test_the_latest_checkpoint_is_the_root_namespaces(sync_saver: PostgresSaver) -> None:
    root = put(sync_saver, "t")
    put(sync_saver, "t", ns="child:1")
    put(sync_saver, "only-sub", ns="child:2")

    infos = {t.thread_id: t for t in sync_saver.list_threads().threads}

    assert infos["t"].latest_checkpoint_id == root
    assert infos["only-sub"].checkpoints == 1


def test_a_metadata_filter_matches_the_latest_checkpoint_only(sync_saver: PostgresSaver) -> None:
    put(sync_saver, "a", metadata={"user": "ann", "step": 1})
    put(sync_saver, "b", metadata={"user": "ann", "step": 1})
    put(sync_saver, "b", metadata={"user": "bob", "step": 2})
    put(sync_saver, "c", metadata={"user": "ann", "step": 1, "tags": ["x", "y"]})
    put(sync_saver, "d", ns="child:1", metadata={"user": "ann"})

    assert [t.thread_id for t in sync_saver.list_threads(filter={"user": "ann"})] == ["a", "c"]
    assert [t.thread_id for t in sync_saver.list_threads(filter={"user": "bob"})] == ["b"]
    assert [t.thread_id for t in sync_saver.list_threads(filter={"tags": ["y"]})] == ["c"]
    paged = all_pages(sync_saver, filter={"user": "ann"}, limit=1)
    assert [t.thread_id for t in paged] == ["a", "c"]
    assert sync_saver.list_threads(filter={"user": "nobody"}).threads == []


def test_idle_for_keeps_threads_whose_latest_checkpoint_is_older(
    sync_saver: PostgresSaver,
) -> None:
    old = datetime.now(timezone.utc) - AGO
    put(sync_saver, "old", ts=old)
    put(sync_saver, "revived", ts=old)
    put(sync_saver, "revived")
    put(sync_saver, "new")
    put(sync_saver, "undated", ts=None)

    idle = sync_saver.list_threads(idle_for=timedelta(days=1))

    assert [t.thread_id for t in idle] == ["old"]
    assert idle.threads[0].latest_ts is not None
    assert abs(idle.threads[0].latest_ts - old) < timedelta(seconds=1)
    assert [t.thread_id for t in sync_saver.list_threads(idle_for=timedelta(days=31))] == []
    both = sync_saver.list_threads(idle_for=3600, filter={"source": "loop"})
    assert [t.thread_id for t in both] == ["old"]


def test_an_unreadable_ts_falls_back_to_the_uuid6_time(sync_saver: PostgresSaver, dsn: str) -> None:
    put(sync_saver, "t")
    with psycopg.connect(dsn) as conn:
        conn.execute('UPDATE checkpoints SET checkpoint = checkpoint || \'{"ts": "soon"}\'')
    info = sync_saver.list_threads().threads[0]
    assert info.latest_ts is not None
    assert abs(info.latest_ts - datetime.now(timezone.utc)) < timedelta(minutes=1)
    # and an unreadable ts is never idle
    assert sync_saver.list_threads(idle_for=timedelta(seconds=0.001)).threads == []


def test_to_dict_is_json_friendly(sync_saver: PostgresSaver) -> None:
    import json

    put(sync_saver, "t", metadata={"source": "input", "step": -1})
    page = sync_saver.list_threads()
    data = json.loads(json.dumps(page.to_dict()))
    assert data["next_after"] is None
    assert data["threads"][0]["thread_id"] == "t"
    assert data["threads"][0]["metadata"] == {"source": "input", "step": -1}
    assert datetime.fromisoformat(data["threads"][0]["latest_ts"]).tzinfo is not None


@pytest.fixture
def other_schema(dsn: str) -> Iterator[str]:
    """A schema of its own (schemas are per database: the name must not collide)."""
    name = f"elsewhere_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_a_saver_with_a_schema_lists_its_own_threads(dsn: str, other_schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        plain, other = PostgresSaver(conn), PostgresSaver(conn, schema=other_schema)
        plain.setup()
        other.setup()
        put(plain, "mine")
        put(other, "theirs", metadata={"k": 1})
        assert [t.thread_id for t in other.list_threads()] == ["theirs"]
        assert [t.thread_id for t in other.list_threads(filter={"k": 1})] == ["theirs"]
        assert [t.thread_id for t in plain.list_threads()] == ["mine"]


async def test_the_async_saver_lists_threads(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync = PostgresSaver(conn)
        sync.setup()
        for t in ("x", "y", "z"):
            put(sync, t)
    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        page = await saver.alist_threads(limit=2)
        assert [t.thread_id for t in page] == ["x", "y"]
        rest = await saver.alist_threads(after=page.next_after)
        assert [t.thread_id for t in rest] == ["z"]
    with PostgresSaver.from_conn_string(dsn) as s:
        assert [t.thread_id for t in (await s.alist_threads(limit=5))] == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"filter": "user=ann"}, "filter"),
        ({"filter": ["user"]}, "filter"),
        ({"after": 5}, "after"),
        ({"after": "a\x00b"}, "after"),
        ({"idle_for": -1}, "idle_for"),
        ({"idle_for": timedelta(0)}, "idle_for"),
        ({"idle_for": "1d"}, "idle_for"),
        ({"idle_for": float("nan")}, "idle_for"),
    ],
)
def test_bad_arguments_raise_typed_errors(
    sync_saver: PostgresSaver, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        sync_saver.list_threads(**kwargs)


# -- plan shapes --------------------------------------------------------------------------------

# 2,000 threads of 50 checkpoints (100,000 rows) and one of 5,000, each with a blob and a write.
_FILL = """
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
SELECT t, '', lpad(i::text, 12, '0'), NULL,
       jsonb_build_object('v', 4, 'id', lpad(i::text, 12, '0'),
                          'ts', (timestamptz '2024-01-01' + i * interval '1 minute')::text,
                          'channel_values', '{}'::jsonb, 'versions_seen', '{}'::jsonb,
                          'channel_versions', jsonb_build_object('doc', i::text)),
       jsonb_build_object('step', i, 'source', 'loop', 'user', 'u' || (i % 2000))
FROM (SELECT 'big' AS t, g AS i FROM generate_series(1, 5000) AS g
      UNION ALL
      SELECT 'th' || lpad((g % 2000)::text, 4, '0'), g FROM generate_series(5001, 105000) AS g)
     AS s;
INSERT INTO checkpoint_blobs
SELECT thread_id, '', 'doc', checkpoint -> 'channel_versions' ->> 'doc', 'json', '\\x7b7d'
FROM checkpoints;
INSERT INTO checkpoint_writes
SELECT thread_id, '', checkpoint_id, 'task', 0, 'ch', 'json', '\\x7b7d', '' FROM checkpoints;
"""


@pytest.fixture(scope="module")
def big_db(db_factory: DatabaseFactory) -> Iterator[psycopg.Connection[Any]]:
    with db_factory.database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        conn.execute(_FILL)
        conn.execute("VACUUM ANALYZE")
        yield conn


def rows_sorted(nodes: list[dict[str, Any]]) -> int:
    """The most rows any Sort node took in."""
    return max(
        (
            n["Actual Rows"] * n.get("Actual Loops", 1)
            for n in nodes
            if n["Node Type"] in ("Sort", "Incremental Sort")
        ),
        default=0,
    )


def test_a_page_of_threads_probes_the_index_and_sorts_nothing(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = list_threads_statement(None, first=False, metadata=False, idle=False)
    nodes = explain_nodes(big_db, sql, {"after": "th0100", "limit": 11, "scan": 2**31 - 1})

    assert not [s for s in scans(nodes) if s[0] == "Seq Scan"]
    assert rows_sorted(nodes) <= 11
    # ~11 threads x (skip-scan probe + head probe + 50 rows in each of 3 tables)
    blocks = nodes[0]["Shared Hit Blocks"] + nodes[0].get("Shared Read Blocks", 0)
    assert blocks < 2000


def test_an_idle_page_walks_threads_without_sorting(big_db: psycopg.Connection[Any]) -> None:
    sql = list_threads_statement(None, first=True, metadata=False, idle=True)
    params = {"after": "", "limit": 11, "scan": 2**31 - 1, "idle_for": timedelta(days=1)}
    nodes = explain_nodes(big_db, sql, params)
    assert not [s for s in scans(nodes) if s[0] == "Seq Scan"]
    assert rows_sorted(nodes) <= 11


def test_a_filtered_page_finds_candidates_through_the_metadata_index(
    big_db: psycopg.Connection[Any],
) -> None:
    sql = list_threads_statement(None, first=True, metadata=True, idle=False)
    params = {"after": "", "limit": 11, "metadata": Jsonb({"user": "u7"})}
    nodes = explain_nodes(big_db, sql, params)
    assert ("Bitmap Index Scan", "checkpoints_metadata_idx") in scans(nodes)
    assert not [s for s in scans(nodes) if s[0] == "Seq Scan"]
    # what is sorted is the matching rows (50 of 105,000), not the table
    assert rows_sorted(nodes) <= 100
