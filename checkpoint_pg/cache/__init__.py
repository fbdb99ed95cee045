"""LangGraph's node cache in PostgreSQL: `PostgresCache` and `AsyncPostgresCache`.

``builder.compile(checkpointer=saver, cache=PostgresCache(conn))`` stores the writes of nodes
that have a ``CachePolicy`` in the table ``checkpoint_cache`` (created by ``setup()``), so a
later run, in any process, skips a node it has already run on the same input.
"""

from __future__ import annotations

from checkpoint_pg.cache.aio import AsyncPostgresCache
from checkpoint_pg.cache.sync import PostgresCache

__all__ = ["AsyncPostgresCache", "PostgresCache"]
