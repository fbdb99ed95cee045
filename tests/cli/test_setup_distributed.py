"""`checkpoint-pg setup --distributed`: the tables sharded on Citus, a clear refusal elsewhere."""

from __future__ import annotations

import psycopg

from tests.cli.conftest import invoke


def test_setup_distributed_shards_the_checkpoint_and_store_tables(citus_dsn: str) -> None:
    result = invoke("setup", "--dsn", citus_dsn, "--distributed")
    assert result.exit_code == 0, result.output
    assert "distributed on Citus" in result.stdout
    with psycopg.connect(citus_dsn) as conn:
        sharded = dict(
            conn.execute(
                "SELECT c.relname, column_to_column_name(p.logicalrelid, p.partkey)"
                " FROM pg_dist_partition AS p JOIN pg_class AS c ON c.oid = p.logicalrelid"
                " WHERE c.relnamespace = current_schema()::regnamespace AND p.partmethod = 'h'"
            )
        )
    assert sharded == {
        "checkpoints": "thread_id",
        "checkpoint_blobs": "thread_id",
        "checkpoint_writes": "thread_id",
        "store": "prefix",
    }


def test_setup_distributed_without_citus_fails_in_one_line(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone():
            return  # the test server is a Citus coordinator: covered above
    result = invoke("setup", "--dsn", dsn, "--distributed")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "citus extension" in result.stderr
    with psycopg.connect(dsn) as conn:  # the saver's setup rolled back, the store's never ran
        assert conn.execute(
            "SELECT to_regclass('checkpoints'), to_regclass('store')"
        ).fetchone() == (
            None,
            None,
        )
