"""`checkpoint-pg doctor`: is this database ready for the savers and the store?

Every check is a row with a status: ``ok``, ``warn`` (works, but look at it) or ``fail`` (the
savers or the store will not work as they are). The command exits 1 when any check fails. It
only reads: it never creates, migrates or locks anything.

Pooler detection, two ways:
- the port heuristic the savers use (`checkpoint_pg._runtime.dsn.resolve_pooler`: ports 6432,
  6543 or ``$CHECKPOINT_PG_POOLED_PORTS``), which decides whether they turn prepared
  statements off;
- what the connection shows: a pooler (PgBouncer, Supavisor, pgcat) answers the client's
  startup itself, so the backend process id it hands to the client (for cancel requests) is
  its own, not the id of the server backend that runs our queries (``pg_backend_pid()``).
  Direct connections see the same id twice. ``SHOW pool_mode`` does not help: on a normal
  database connection PgBouncer forwards it to the server, which does not know it.
  Whether the pooler pools by session or by transaction cannot be seen from the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from checkpoint_pg.cli.ops.common import (
    EXIT_PROBLEM,
    OperationFailedError,
    Session,
    endpoint,
    operator_command,
)
from checkpoint_pg.cli.ops.output import emit_json, human_bytes, table

__all__ = ["COMMANDS", "Check", "run_checks"]

MIN_SERVER_VERSION = 130000

# Data tables whose size is reported, with the part they belong to.
DATA_TABLES = (
    ("checkpoints", "saver"),
    ("checkpoint_blobs", "saver"),
    ("checkpoint_writes", "saver"),
    ("store", "store"),
    ("store_vectors", "store"),
)


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, **self.data}


def _exists(session: Session, name: str) -> bool:
    return bool(session.fetchone("table_exists", {"table": session.qualified(name)})[0])


def _max_version(session: Session, name: str) -> int | None:
    """The highest `v` in migrations table `name`; None if the table does not exist."""
    if not _exists(session, name):
        return None
    from store._sql import migrations_file

    # The store's statement for its own migration tables: the same for any of them.
    row = session.run(
        migrations_file()["version_current"], table=session.identifier(name)
    ).fetchone()
    value = row[0] if row else None
    return -1 if value is None else int(value)


def _server(session: Session) -> list[Check]:
    version, number, database, user, schema, replica = session.fetchone("server")
    data = {"version": version, "version_num": number, "database": database, "user": user}
    checks = []
    if number < MIN_SERVER_VERSION:
        checks.append(
            Check("server", "warn", f"PostgreSQL {version}: 13 or newer is supported", data)
        )
    else:
        checks.append(Check("server", "ok", f"PostgreSQL {version}, database {database}", data))
    where = session.schema or schema or "(no schema on the search_path)"
    checks.append(
        Check(
            "schema",
            "ok" if (session.schema or schema) else "fail",
            f"tables looked up in {where}" + ("" if session.schema else " (search_path)"),
            {"schema": session.schema or schema},
        )
    )
    if replica:
        checks.append(
            Check(
                "read-only",
                "warn",
                "this server is a replica in recovery: reads work, setup/prune/delete do not",
            )
        )
    return checks


def _pgvector(session: Session) -> Check:
    row = session.execute("pgvector_versions").fetchone()
    if row is None:
        return Check(
            "pgvector",
            "warn",
            "not available on this server: the store works, semantic search (index=) does not",
            {"available": None, "installed": None},
        )
    available, installed = row
    data = {"available": available, "installed": installed}
    if installed is None:
        return Check(
            "pgvector",
            "ok",
            f"available ({available}), not installed: a store set up with index= installs it",
            data,
        )
    return Check("pgvector", "ok", f"installed {installed} (available {available})", data)


def _pooler(session: Session) -> Check:
    from checkpoint_pg._runtime.dsn import pooled_ports, resolve_pooler

    marked = resolve_pooler(session.dsn, None)
    client_pid = session.conn.info.backend_pid
    server_pid, server_port = session.fetchone("backend")
    behind = client_pid != server_pid
    ports = ", ".join(str(p) for p in sorted(pooled_ports()))
    data = {
        "pooler_detected": behind,
        "pooler_mode_by_port": marked,
        "client_backend_pid": client_pid,
        "server_backend_pid": server_pid,
        "server_port": server_port,
    }
    if behind and marked:
        return Check(
            "pooler",
            "ok",
            "behind a pooler (the startup's backend pid is not the server's); the port marks "
            "it as a transaction pooler: the savers turn prepared statements off",
            data,
        )
    if behind:
        return Check(
            "pooler",
            "warn",
            "behind a pooler (the startup's backend pid is not the server's), but its port is "
            f"not marked as one ({ports}): if it pools by transaction, pass pooler=True or add "
            "the port to $CHECKPOINT_PG_POOLED_PORTS",
            data,
        )
    if marked:
        return Check(
            "pooler",
            "warn",
            "the port is marked as a transaction pooler, but the connection is direct: "
            "prepared statements are off for nothing (pooler=False turns them on)",
            data,
        )
    return Check("pooler", "ok", "direct connection, no pooler in between", data)


_SETUP_HINT = "run `checkpoint-pg setup`"


def _official_check(
    name: str, current: int | None, latest: int, *, required: bool, what: str
) -> Check:
    """An official migrations table against the version this package writes."""
    data = {"table": name, "version": current, "expected": latest}
    title = f"migrations: {name}"
    if current is None:
        if required:
            return Check(title, "fail", f"{name} missing: {what} not set up; {_SETUP_HINT}", data)
        detail = f"{name} missing: {what} not set up (fine if you do not use it)"
        return Check(title, "warn", detail, data)
    if current < latest:
        detail = f"at v{current}, v{latest} expected (langgraph 3.2.0 format): {_SETUP_HINT}"
        return Check(title, "fail", detail, data)
    if current > latest:
        detail = (
            f"at v{current}, newer than the v{latest} this package knows: "
            "written by a newer official release?"
        )
        return Check(title, "warn", detail, data)
    return Check(title, "ok", f"v{current} (up to date)", data)


def _own_check(name: str, current: int | None, latest: int, what: str) -> Check:
    """This package's own migrations table (extra indexes) against its latest version."""
    data = {"table": name, "version": current, "expected": latest}
    if current is None or current < latest:
        at = "missing" if current is None else f"at v{current}"
        detail = (
            f"{at}, v{latest} expected: this package's extra indexes for the {what} "
            f"are missing (set up by the official package?); {_SETUP_HINT}"
        )
        return Check(f"migrations: {name}", "warn", detail, data)
    return Check(f"migrations: {name}", "ok", f"v{current} (up to date)", data)


def _migrations(session: Session) -> list[Check]:
    from checkpoint_pg._schema import LATEST_OWN_VERSION, LATEST_VERSION
    from store._sql import OFFICIAL_MIGRATIONS as STORE_OFFICIAL
    from store._sql import OWN_MIGRATIONS as STORE_OWN

    checks: list[Check] = []
    families = (
        ("checkpoint_migrations", LATEST_VERSION, True, "checkpoint tables"),
        ("store_migrations", len(STORE_OFFICIAL) - 1, False, "store tables"),
    )
    owns = {
        "checkpoint_migrations": ("checkpoint_pg_migrations", LATEST_OWN_VERSION, "saver"),
        "store_migrations": ("store_pg_migrations", len(STORE_OWN) - 1, "store"),
    }
    for name, latest, required, what in families:
        current = _max_version(session, name)
        checks.append(_official_check(name, current, latest, required=required, what=what))
        if current is not None:
            own_name, own_latest, own_what = owns[name]
            own_current = _max_version(session, own_name)
            checks.append(_own_check(own_name, own_current, own_latest, own_what))
    vectors = _max_version(session, "vector_migrations")
    if vectors is not None:
        # v1 is the vectors table; v2 the ANN index, skipped and unrecorded for a flat index.
        status = "ok" if vectors >= 1 else "fail"
        detail = f"v{vectors}" + (" (up to date)" if vectors >= 1 else f": {_SETUP_HINT}")
        checks.append(Check("migrations: vector_migrations", status, detail, {"version": vectors}))
    return checks


def _tables(session: Session, saver_version: int | None, store_version: int | None) -> list[Check]:
    checks = []
    for name, part in DATA_TABLES:
        exists = _exists(session, name)
        expected = saver_version is not None if part == "saver" else store_version is not None
        if name == "store_vectors":
            expected = False
        if not exists:
            if expected:
                checks.append(
                    Check(
                        f"table: {name}",
                        "fail",
                        f"missing although its migrations are recorded: {name} was dropped?",
                        {"table": name, "exists": False},
                    )
                )
            continue
        size, rows, unanalyzed = session.fetchone("table_size", {"table": session.qualified(name)})
        checks.append(
            Check(
                f"table: {name}",
                "ok",
                f"{human_bytes(size)}, "
                + ("rows not estimated yet (never analyzed)" if unanalyzed else f"~{rows:,} rows"),
                {"table": name, "exists": True, "bytes": int(size), "rows_estimate": int(rows)},
            )
        )
    return checks


def run_checks(session: Session) -> list[Check]:
    """Every check, in order; a connection failure is one failed check."""
    try:
        session.conn  # noqa: B018 - connect now, to report a failure as a check
    except OperationFailedError as exc:
        return [Check("connection", "fail", exc.message, {"target": endpoint(session.dsn)})]
    checks = [Check("connection", "ok", endpoint(session.dsn))]
    checks += _server(session)
    checks.append(_pgvector(session))
    checks.append(_pooler(session))
    migrations = _migrations(session)
    checks += migrations
    versions = {c.data.get("table"): c.data.get("version") for c in migrations}
    checks += _tables(
        session, versions.get("checkpoint_migrations"), versions.get("store_migrations")
    )
    return checks


@operator_command("doctor", short_help="Check the server, extensions, pooler, migrations, sizes.")
def doctor(session: Session) -> None:
    """Check the server, pgvector, pooler, migrations and table sizes; exit 1 on a problem.

    Each check is ok, warn (works, but look at it) or fail. Read-only.
    """
    checks = run_checks(session)
    failed = [c for c in checks if c.status == "fail"]
    if session.json:
        emit_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        table(["check", "status", "detail"], [(c.name, c.status, c.detail) for c in checks])
        warned = sum(c.status == "warn" for c in checks)
        summary = f"{len(failed)} failed, {warned} warnings, {len(checks)} checks"
        click.echo(("problems found: " if failed else "ok: ") + summary)
    if failed:
        raise click.exceptions.Exit(EXIT_PROBLEM)


COMMANDS = [doctor]
