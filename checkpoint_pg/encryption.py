"""Encryption bound to rows: `RowBoundEncryption`, for the savers and the store.

Pass it as ``encryption=`` to `PostgresSaver`, `AsyncPostgresSaver`, `PostgresStore` or
`AsyncPostgresStore` (or their ``from_conn_string``). Every stored value is then sealed with
AES-GCM, with associated data naming its row:

- ``checkpoint_blobs``: (thread_id, checkpoint_ns, channel, version, type tag);
- ``checkpoint_writes``: (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
  channel, type tag);
- ``checkpoints``: the JSONB (ids, channel_versions, versions_seen) and the metadata stay
  plain for the SQL that reads them, and are authenticated by a sealed copy bound to
  (thread_id, checkpoint_ns, checkpoint_id); channel values are never inline;
- ``store``: the item value, bound to (namespace, key).

A value that is unencrypted, altered or moved to another row raises `TamperedValueError`
(an `IntegrityError`) naming the row, and is never deserialised.

What it protects: values against anyone who can read the database; every row against anyone
who can write to it without a key (planting, altering, moving values). What it does not:
checkpoint metadata is plain JSONB, readable and filterable (altering it is detected); ids,
namespaces, store keys and channel names are plain; a writer can delete rows or put back an
older copy of a whole thread's rows; anyone holding a key can do anything. See
`checkpoint_pg._runtime.aead` for the format, and the README for key rotation.
"""

from __future__ import annotations

from checkpoint_pg._runtime.aead import KEYS_ENV_VAR, RowBoundEncryption
from checkpoint_pg._runtime.errors import IntegrityError, InvalidKeyringError, TamperedValueError

__all__ = [
    "KEYS_ENV_VAR",
    "IntegrityError",
    "InvalidKeyringError",
    "RowBoundEncryption",
    "TamperedValueError",
]
