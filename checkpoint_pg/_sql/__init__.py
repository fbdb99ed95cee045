"""Every SQL statement the savers run: the `.sql` files of this package, rendered per schema.

The statements live in named blocks (see checkpoint_pg/_runtime/sqlfile.py), one file per
concern: schema.sql (migrations, partitions, setup), hot_path.sql (get_tuple, list, put,
put_writes), threads.sql (delete, copy, delete_for_runs, prune), history.sql
(get_delta_channel_history) and retention.sql (list_threads, the retention sweep). The module
of the same name selects and renders them; `tables` supplies the schema's table names.
"""

from __future__ import annotations

from langgraph.checkpoint.serde.types import TASKS

from checkpoint_pg._sql.history import delta_history_statement
from checkpoint_pg._sql.hot_path import (
    BLOB_ARRAYS,
    MAX_VALUES_ROWS,
    WRITE_ARRAYS,
    list_statement,
    put_delta_statement,
    put_statement,
    select_statement,
    spread,
    writes_statement,
)
from checkpoint_pg._sql.retention import (
    RetentionStatements,
    list_threads_statement,
    retention_statements_for,
    thread_candidates_statement,
)
from checkpoint_pg._sql.schema import (
    COLUMN_COMPRESSION,
    COMPRESSION_CODES,
    OFFICIAL_MIGRATIONS,
    OWN_MIGRATIONS,
    PARTITION_KEY,
    PARTITIONED_TABLES,
    TABLE_LAYOUT,
    compression_params,
    migration_sql,
    partition_sql,
    partitioned_table_sql,
    qualified_table,
    set_compression_sql,
    table_name,
)
from checkpoint_pg._sql.statements import Statements, statements_for
from checkpoint_pg._sql.tables import table_parts
from checkpoint_pg._sql.threads import PruneStatements, prune_statements_for

__all__ = [
    "BLOB_ARRAYS",
    "COLUMN_COMPRESSION",
    "COMPRESSION_CODES",
    "MAX_VALUES_ROWS",
    "OFFICIAL_MIGRATIONS",
    "OWN_MIGRATIONS",
    "PARTITIONED_TABLES",
    "PARTITION_KEY",
    "TABLE_LAYOUT",
    "TASKS_CHANNEL",
    "WRITE_ARRAYS",
    "PruneStatements",
    "RetentionStatements",
    "Statements",
    "compression_params",
    "delta_history_statement",
    "list_statement",
    "list_threads_statement",
    "migration_sql",
    "partition_sql",
    "partitioned_table_sql",
    "prune_statements_for",
    "put_delta_statement",
    "put_statement",
    "qualified_table",
    "retention_statements_for",
    "select_statement",
    "set_compression_sql",
    "spread",
    "statements_for",
    "table_name",
    "table_parts",
    "thread_candidates_statement",
    "writes_statement",
]

# The channel of pending sends (format < 4), a parameter of the reads that fetch them.
TASKS_CHANNEL = TASKS
