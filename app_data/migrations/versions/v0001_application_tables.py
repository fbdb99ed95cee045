"""Application tables: users, Project, ProjectFile, ProjectThought and their enum types.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written by hand to match the existing Prisma-created schema (see `app_data.models` for the
assumptions). Labels and types are literal here, not imported from the models: a migration
describes the schema at its revision and must not change when the models do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_NOW = sa.text("timezone('utc'::text, now())")

ENUMS: dict[str, tuple[str, ...]] = {
    "Plan": ("FREE", "PAY_AS_YOU_GO", "SUBSCRIPTION"),
    "UserStatus": ("ACTIVE", "PAUSED", "BLOCKED"),
    "SandboxState": ("RUNNING", "PAUSED", "KILLED", "NONE"),
    "ProjectStatus": ("ACTIVE", "PAUSED", "ENDED"),
    "ProjectType": ("GAME", "FULLSTACK", "LANDING_PAGE", "CODE_ANALYSIS"),
}


def _enum(name: str) -> postgresql.ENUM:
    # Created explicitly in upgrade() (so offline SQL has it too): create_table must not.
    return postgresql.ENUM(*ENUMS[name], name=name, create_type=False)


def _ts(precision: int) -> postgresql.TIMESTAMP:
    return postgresql.TIMESTAMP(timezone=False, precision=precision)


def upgrade() -> None:
    """Create the enum types, the four tables and their indexes.

    Long on purpose: one straight run of DDL, table after table as the schema reads, and a
    released migration is left as it was released rather than split up.
    """
    for name, labels in ENUMS.items():
        op.execute(postgresql.CreateEnumType(postgresql.ENUM(*labels, name=name)))

    op.create_table(
        "users",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("walletAddress", sa.Text(), nullable=False),
        sa.Column("createdAt", _ts(3), nullable=False, server_default=UTC_NOW),
        sa.Column("updatedAt", _ts(3), nullable=False, server_default=UTC_NOW),
        sa.Column("currentPlan", _enum("Plan"), nullable=False, server_default="FREE"),
        sa.Column("status", _enum("UserStatus"), nullable=False, server_default="ACTIVE"),
        sa.Column("username", sa.Text()),
        sa.Column("customerId", sa.Text()),
        sa.Column("currentPaymentMethodId", sa.Text()),
        sa.Column("githubToken", sa.Text()),
        sa.Column("githubUsername", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="users_pkey"),
    )
    op.create_index("users_walletAddress_key", "users", ["walletAddress"], unique=True)

    op.create_table(
        "Project",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("userId", sa.String(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sandbox_state", _enum("SandboxState"), nullable=False, server_default="NONE"),
        sa.Column("created_at", _ts(6), nullable=False, server_default=UTC_NOW),
        sa.Column("updated_at", _ts(6), nullable=False, server_default=UTC_NOW),
        sa.Column("status", _enum("ProjectStatus"), nullable=False, server_default="ACTIVE"),
        sa.Column("last_active", _ts(6), nullable=False, server_default=UTC_NOW),
        sa.Column("type", _enum("ProjectType"), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("active_sandbox_id", sa.String()),
        sa.Column("ended_at", _ts(6)),
        sa.Column("metadata", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("id", name="Project_pkey"),
        sa.ForeignKeyConstraint(
            ["userId"],
            ["users.id"],
            name="Project_userId_fkey",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )
    op.create_index("Project_userId_created_at_id_idx", "Project", ["userId", "created_at", "id"])

    op.create_table(
        "ProjectFile",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("project_id", sa.String(), nullable=False),
        sa.Column("path", sa.Text(collation="C"), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(6), nullable=False, server_default=UTC_NOW),
        sa.Column("updated_at", _ts(6), nullable=False, server_default=UTC_NOW),
        sa.Column("deleted_at", _ts(6)),
        sa.PrimaryKeyConstraint("id", name="ProjectFile_pkey"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["Project.id"],
            name="ProjectFile_project_id_fkey",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )
    op.create_index(
        "ProjectFile_project_id_path_key", "ProjectFile", ["project_id", "path"], unique=True
    )

    op.create_table(
        "ProjectThought",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("project_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB()),
        sa.Column("thread_id", sa.Text()),
        sa.Column("created_at", _ts(6), nullable=False, server_default=UTC_NOW),
        sa.PrimaryKeyConstraint("id", name="ProjectThought_pkey"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["Project.id"],
            name="ProjectThought_project_id_fkey",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )
    op.create_index(
        "ProjectThought_project_id_created_at_id_idx",
        "ProjectThought",
        ["project_id", "created_at", "id"],
    )
    op.create_index(
        "ProjectThought_project_id_kind_created_at_id_idx",
        "ProjectThought",
        ["project_id", "kind", "created_at", "id"],
    )


def downgrade() -> None:
    """Drop the four tables and the enum types."""
    for table in ("ProjectThought", "ProjectFile", "Project", "users"):
        op.drop_table(table)
    for name in ENUMS:
        op.execute(postgresql.DropEnumType(postgresql.ENUM(name=name)))
