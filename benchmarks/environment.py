"""What the results were measured on: machine, Python, packages, PostgreSQL server."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from checkpoint_pg._runtime.dsn import mask_dsn

__all__ = ["describe"]

_PACKAGES = (
    "checkpoint-pg",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-postgres",
    "psycopg",
    "psycopg-pool",
)
_SETTINGS = ("fsync", "synchronous_commit", "shared_buffers", "max_connections")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _server(admin_dsn: str) -> dict[str, Any]:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        host = conn.info.host
        version = conn.execute("SHOW server_version").fetchone()
        rows = conn.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(_SETTINGS),)
        ).fetchall()
    settings = {name: f"{setting}{' x ' + unit if unit else ''}" for name, setting, unit in rows}
    return {
        "version": version[0] if version else "unknown",
        "dsn": mask_dsn(admin_dsn),
        "transport": "unix socket" if host.startswith("/") else f"TCP {host}",
        "settings": settings,
    }


def _revision() -> str | None:
    """The repository's commit, "+dirty" when checkpoint_pg or store has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "checkpoint_pg", "store"],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def describe(admin_dsn: str) -> dict[str, Any]:
    """Machine, software and server facts for the report."""
    return {
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "cpu": _cpu_model(),
            "os": platform.platform(),
        },
        "python": platform.python_version(),
        "revision": _revision(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "server": _server(admin_dsn),
    }
