"""Search in PostgreSQL: a trigram index on file content, full text on thoughts, file encoding.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

- ``pg_trgm`` is created when missing, in schema ``public`` when there is one: an extension is
  one per database, and putting it in an application schema would tie it to that schema (a
  ``DROP SCHEMA ... CASCADE`` there would drop it, and every trigram index of every other
  schema with it). A role that may not create it gets `MigrationError` naming the statement an
  administrator must run; nothing of this revision is applied then.
- ``ProjectFile_content_trgm_idx``: GIN over ``content`` with ``gin_trgm_ops`` (qualified with
  the extension's schema, whatever the ``search_path``). It serves ``LIKE``/``ILIKE`` with a
  literal of three characters or more; shorter literals are still answered, by the
  ``(project_id, path)`` index and a scan of that project's rows. ``fastupdate = off``: writes
  go straight into the index, never into a pending list that a bulk save can grow until the
  planner prices the index above reading the table (a file search is read far more often than
  written).
- ``ProjectThought_content_fts_idx``: GIN over ``to_tsvector('english', content)``; an
  expression index, so the audited table keeps exactly its columns.
- ``ProjectFile.encoding``: ``'utf-8'`` (default) or ``'base64'`` for binary files.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

from app_data.errors import MigrationError

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EXTENSION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('app_data:pg_trgm', 0))"
_INSUFFICIENT_PRIVILEGE = "42501"


def _trigram_schema() -> str:
    """The schema holding pg_trgm, creating the extension first when it is missing."""
    bind = op.get_bind()
    bind.exec_driver_sql(_EXTENSION_LOCK)  # two schemas migrating at once create it once
    find = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    schema = bind.exec_driver_sql(find).scalar()
    if schema is not None:
        return str(schema)
    has_public = bind.exec_driver_sql("SELECT to_regnamespace('public') IS NOT NULL").scalar()
    create = "CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if has_public else "")
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(create)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
            raise MigrationError(
                "app_data needs the pg_trgm extension and this role may not create it: ask an "
                f"administrator to run {create!r} in this database, then migrate again"
            ) from None
        raise
    return str(bind.exec_driver_sql(find).scalar())


def upgrade() -> None:
    """Add the encoding column, the trigram index on files and the full-text index on thoughts."""
    op.add_column(
        "ProjectFile",
        sa.Column("encoding", sa.Text(), nullable=False, server_default="utf-8"),
    )
    op.create_check_constraint(
        "ProjectFile_encoding_check", "ProjectFile", "encoding IN ('utf-8', 'base64')"
    )
    schema = _trigram_schema()
    quoted = op.get_bind().dialect.identifier_preparer.quote(schema)
    op.execute(
        'CREATE INDEX "ProjectFile_content_trgm_idx" ON "ProjectFile" '
        f"USING gin (content {quoted}.gin_trgm_ops) WITH (fastupdate = off)"
    )
    op.execute(
        'CREATE INDEX "ProjectThought_content_fts_idx" ON "ProjectThought" '
        "USING gin (to_tsvector('english'::regconfig, content))"
    )


def downgrade() -> None:
    """Drop what `upgrade` added (the extension stays: other schemas may use it)."""
    op.drop_index("ProjectThought_content_fts_idx", table_name="ProjectThought")
    op.drop_index("ProjectFile_content_trgm_idx", table_name="ProjectFile")
    op.drop_constraint("ProjectFile_encoding_check", "ProjectFile", type_="check")
    op.drop_column("ProjectFile", "encoding")
