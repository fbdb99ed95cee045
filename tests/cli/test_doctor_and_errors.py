"""doctor, setup, and what every operator command shares: DSN handling, errors, exit codes."""

from __future__ import annotations

import socket

import psycopg
import pytest

from tests.cli.conftest import invoke, parsed
from tests.harness import TestServer, pgbouncer_binary, start_pgbouncer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_fails_on_an_empty_database(dsn: str) -> None:
    result = invoke("doctor", "--dsn", dsn)
    assert result.exit_code == 1
    assert "checkpoint_migrations missing" in result.stdout
    assert "run `checkpoint-pg setup`" in result.stdout
    assert "problems found" in result.stdout


def test_doctor_passes_after_setup_and_reports_every_check(dsn: str) -> None:
    assert invoke("setup", "--dsn", dsn).exit_code == 0
    report = parsed(invoke("doctor", "--dsn", dsn, "--json"))
    assert report["ok"] is True
    checks = {c["check"]: c for c in report["checks"]}
    for table in ("checkpoint_migrations", "checkpoint_pg_migrations", "store_migrations"):
        assert checks[f"migrations: {table}"]["status"] == "ok"
    assert checks["migrations: checkpoint_migrations"]["version"] == 9
    assert checks["server"]["version_num"] >= 130000
    assert checks["pooler"]["pooler_detected"] is False
    assert checks["table: checkpoints"]["bytes"] > 0
    assert "pgvector" in checks


def test_doctor_fails_when_migrations_are_behind(dsn: str) -> None:
    assert invoke("setup", "--dsn", dsn).exit_code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM checkpoint_migrations WHERE v > 5")
    result = invoke("doctor", "--dsn", dsn)
    assert result.exit_code == 1
    assert "at v5, v9 expected" in result.stdout


def test_doctor_on_an_unreachable_server_is_one_failed_check_without_the_password() -> None:
    port = _free_port()
    dsn = f"postgresql://postgres:hunter2secret@127.0.0.1:{port}/app"
    result = invoke("doctor", "--dsn", dsn, "--json")
    assert result.exit_code == 1
    checks = parsed_any(result.stdout)["checks"]
    assert checks[0]["status"] == "fail"
    assert f"cannot connect to host=127.0.0.1 port={port}" in checks[0]["detail"]
    assert "hunter2secret" not in result.output


def parsed_any(text: str) -> dict[str, object]:
    import json

    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def test_doctor_detects_pgbouncer_in_between(pg_server: TestServer, database_dsn: str) -> None:
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed")
    assert invoke("setup", "--dsn", database_dsn).exit_code == 0
    bouncer = start_pgbouncer(pg_server, pool_size=2)
    try:
        report = parsed_any(invoke("doctor", "--dsn", bouncer.dsn(database_dsn), "--json").stdout)
    finally:
        bouncer.stop()
    pooler = next(c for c in report["checks"] if c["check"] == "pooler")  # type: ignore[attr-defined]
    assert pooler["pooler_detected"] is True
    assert pooler["status"] == "warn"  # a random port, not marked as a transaction pooler


def test_a_command_without_a_dsn_is_a_usage_error() -> None:
    result = invoke("threads")
    assert result.exit_code == 2
    assert "--dsn" in result.stderr
    assert "CHECKPOINT_PG_DSN" in result.stderr


def test_the_dsn_comes_from_the_environment(dsn: str) -> None:
    assert invoke("setup", "--dsn", dsn).exit_code == 0
    result = invoke("threads", env={"CHECKPOINT_PG_DSN": dsn})
    assert result.exit_code == 0
    assert "no threads" in result.stdout


def test_connection_refused_is_one_masked_line() -> None:
    port = _free_port()
    result = invoke("history", "t", "--dsn", f"postgresql://bob:topsecret@127.0.0.1:{port}/db")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: cannot connect to host=127.0.0.1 port={port} dbname=db user=bob: "
        "connection refused"
    )
    assert "topsecret" not in result.output


def test_an_unparseable_dsn_is_a_usage_error_without_the_secret() -> None:
    result = invoke("threads", "--dsn", "host=x password=topsecret port")
    assert result.exit_code == 2
    assert "--dsn" in result.stderr
    assert "topsecret" not in result.output


def test_commands_on_a_database_without_tables_say_to_run_setup(dsn: str) -> None:
    result = invoke("history", "t", "--dsn", dsn)
    assert result.exit_code == 1
    assert "checkpoint-pg setup" in result.stderr
    assert "Traceback" not in result.output


def test_help_documents_the_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for line in ("0  success", "1  problem found", "2  usage error", "3  not found"):
        assert line in result.stdout
    for command in ("doctor", "threads", "history", "show", "diff", "copy", "delete", "prune"):
        assert command in result.stdout


def test_setup_with_a_schema_creates_every_table_there(dsn: str) -> None:
    assert invoke("setup", "--dsn", dsn, "--schema", "agents").exit_code == 0
    with psycopg.connect(dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'agents'"
            ).fetchall()
        }
    assert {
        "checkpoints",
        "checkpoint_blobs",
        "checkpoint_writes",
        "store",
        "checkpoint_cache",
    } <= tables
    assert parsed(invoke("doctor", "--dsn", dsn, "--schema", "agents", "--json"))["ok"] is True
