"""Alembic migrations: apply, revert, adopt; and no drift between models and migrated schema.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from app_data import MigrationError, migrations
from app_data.models import ENUM_TYPES, Base

REPO = Path(__file__).resolve().parents[2]


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return {r[0] for r in rows}


def _enum_types(dsn: str) -> dict[str, list[str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
               FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
               WHERE t.typnamespace = current_schema()::regnamespace GROUP BY t.typname"""
        ).fetchall()
    return {name: list(labels) for name, labels in rows}


async def test_upgrade_creates_the_application_tables_in_the_target_schema(dsn: str) -> None:
    assert await migrations.current(dsn) is None
    await migrations.upgrade(dsn)
    assert await migrations.current(dsn) == "0002"
    assert _tables(dsn) == {
        "users",
        "Project",
        "ProjectFile",
        "ProjectThought",
        migrations.VERSION_TABLE,
    }


async def test_the_models_and_the_migrated_database_agree(migrated: str) -> None:
    assert await migrations.pending_changes(migrated) == []


@pytest.mark.parametrize(
    "change",
    [
        'ALTER TABLE users ALTER COLUMN "createdAt" TYPE timestamp(6)',
        'ALTER TABLE "ProjectFile" ALTER COLUMN path TYPE text COLLATE "POSIX"',
        'DROP INDEX "ProjectThought_project_id_kind_created_at_id_idx"',
        """ALTER TABLE users ALTER COLUMN "currentPlan" SET DEFAULT 'PAY_AS_YOU_GO'""",
        'ALTER TABLE "Project" ALTER COLUMN description SET NOT NULL',
        'ALTER TABLE "ProjectThought" ADD COLUMN extra int',
    ],
)
async def test_the_drift_check_catches_a_schema_change(migrated: str, change: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(change)
    assert await migrations.pending_changes(migrated) != []


async def test_enums_are_native_postgresql_types_with_the_model_labels(migrated: str) -> None:
    in_database = _enum_types(migrated)
    assert in_database == {str(e.name): list(e.enums) for e in ENUM_TYPES}
    with psycopg.connect(migrated) as conn:
        kinds: dict[str, str] = dict(
            conn.execute(
                """SELECT column_name, data_type FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'Project'"""
            ).fetchall()
        )
    assert kinds["status"] == kinds["type"] == kinds["sandbox_state"] == "USER-DEFINED"


# The columns of the platform's schema for these two tables (docs/audit.md, finding 6.3):
# (type, precision, nullable).
AUDITED = {
    "users": {
        "id": ("text", None, "NO"),
        "walletAddress": ("text", None, "NO"),
        "createdAt": ("timestamp without time zone", 3, "NO"),
        "updatedAt": ("timestamp without time zone", 3, "NO"),
        "currentPlan": ("USER-DEFINED", None, "NO"),
        "status": ("USER-DEFINED", None, "NO"),
        "username": ("text", None, "YES"),
        "customerId": ("text", None, "YES"),
        "currentPaymentMethodId": ("text", None, "YES"),
        "githubToken": ("text", None, "YES"),
        "githubUsername": ("text", None, "YES"),
    },
    "Project": {
        "id": ("character varying", None, "NO"),
        "userId": ("character varying", None, "NO"),
        "name": ("character varying", None, "NO"),
        "sandbox_state": ("USER-DEFINED", None, "NO"),
        "created_at": ("timestamp without time zone", 6, "NO"),
        "updated_at": ("timestamp without time zone", 6, "NO"),
        "status": ("USER-DEFINED", None, "NO"),
        "last_active": ("timestamp without time zone", 6, "NO"),
        "type": ("USER-DEFINED", None, "NO"),
        "description": ("text", None, "YES"),
        "active_sandbox_id": ("character varying", None, "YES"),
        "ended_at": ("timestamp without time zone", 6, "YES"),
        "metadata": ("jsonb", None, "YES"),
    },
}


@pytest.mark.parametrize("table", sorted(AUDITED))
async def test_the_schema_matches_the_audited_source_of_truth(migrated: str, table: str) -> None:
    with psycopg.connect(migrated) as conn:
        rows = conn.execute(
            """SELECT column_name, data_type, datetime_precision, is_nullable,
                      character_maximum_length
               FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = %s""",
            (table,),
        ).fetchall()
    actual = {
        name: (kind, precision if kind.startswith("timestamp") else None, nullable)
        for name, kind, precision, nullable, _ in rows
    }
    assert actual == AUDITED[table]
    if table == "Project":
        assert {r[0]: r[4] for r in rows}["name"] == 255


async def test_upgrade_is_idempotent_and_safe_from_many_processes_at_once(dsn: str) -> None:
    await asyncio.gather(*(migrations.upgrade(dsn) for _ in range(3)))
    await migrations.upgrade(dsn)
    assert await migrations.current(dsn) == "0002"
    assert await migrations.pending_changes(dsn) == []


async def test_downgrade_to_base_removes_tables_and_types(migrated: str) -> None:
    await migrations.downgrade(migrated, "base")
    assert _tables(migrated) == {migrations.VERSION_TABLE}
    assert _enum_types(migrated) == {}
    assert await migrations.current(migrated) is None
    await migrations.upgrade(migrated)  # and back
    assert await migrations.pending_changes(migrated) == []


async def test_an_existing_schema_is_adopted_with_stamp(dsn: str) -> None:
    # As if the platform's own migrations had created the tables already.
    from sqlalchemy import create_engine

    from app_data.session import parse_database_url

    conninfo = parse_database_url(dsn).conninfo
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo))
    Base.metadata.create_all(engine)
    engine.dispose()

    with pytest.raises(MigrationError, match="already exists"):
        await migrations.upgrade(dsn)
    await migrations.stamp(dsn, "head")  # the tables came from today's models
    assert await migrations.current(dsn) == "0002"
    await migrations.upgrade(dsn)  # nothing left to do
    assert await migrations.pending_changes(dsn) == []


async def test_a_failed_migration_applies_nothing(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE TABLE "ProjectFile" (id int)')  # collides half-way through
    with pytest.raises(MigrationError):
        await migrations.upgrade(dsn)
    assert _tables(dsn) == {"ProjectFile"}
    assert _enum_types(dsn) == {}


def test_the_command_line_upgrades_the_configured_database(dsn: str) -> None:
    env = {**os.environ, "APP_DATA_DATABASE_URL": dsn}
    done = subprocess.run(
        [sys.executable, "-m", "app_data.migrations", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "app_data.migrations", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "users" in _tables(dsn)
