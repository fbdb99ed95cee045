"""Building blocks for saver tests: checkpoints, configs and direct table reads."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.base.id import uuid6


def checkpoint(values: dict[str, Any] | None = None, **versions: str) -> Checkpoint:
    """A format-v4 checkpoint holding `values`; each value's channel gets version `versions[ch]`
    or "1"."""
    values = values or {}
    return {
        "v": 4,
        "id": str(uuid6(clock_seq=-1)),
        "ts": datetime.now(timezone.utc).isoformat(),
        "channel_values": values,
        "channel_versions": {ch: versions.get(ch, "1") for ch in values},
        "versions_seen": {},
        "updated_channels": list(values),
    }


def config(thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None) -> Any:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def versions_of(cp: Checkpoint) -> dict[str, Any]:
    return dict(cp["channel_versions"])


def count_rows(dsn: str, table: str, thread_id: str | None = None) -> int:
    with psycopg.connect(dsn) as conn:
        if thread_id is None:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        else:
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,)
            ).fetchone()
    assert row is not None
    return int(row[0])


def checkpoint_id_of(cfg: RunnableConfig) -> str:
    return str(cfg["configurable"]["checkpoint_id"])
