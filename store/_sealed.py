"""Store values with `RowBoundEncryption` on: each sealed to its (namespace, key).

Only used when a store is given ``encryption=``. A value is stored as the JSON object
``{"$rowaead": "<base64 of the sealed value JSON>"}``, sealed with associated data
("store", namespace, key), so the JSONB column keeps its type and nothing the official store
reads changes shape. Filters and semantic search read the plain value in SQL, so a store with
encryption refuses them (`InvalidFilterError`, `InvalidIndexConfigError`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from checkpoint_pg._runtime.aead import RowBoundEncryption, row_name
from checkpoint_pg._runtime.errors import TamperedValueError

__all__ = ["FIELD", "open_value", "seal_value", "store_row"]

FIELD = "$rowaead"


def store_row(prefix: str, key: str) -> list[str]:
    return ["store", prefix, key]


def seal_value(enc: RowBoundEncryption, value_text: str, prefix: str, key: str) -> str:
    """The JSON text stored for an item whose value is `value_text`, sealed to its row."""
    sealed = enc.seal(value_text.encode(), store_row(prefix, key))
    return json.dumps({FIELD: base64.b64encode(sealed).decode()})


def open_value(enc: RowBoundEncryption, stored: Any, prefix: str, key: str) -> dict[str, Any]:
    """The item value sealed in `stored`, checked against (prefix, key), else
    `TamperedValueError` naming the row."""
    name = row_name("store", prefix=prefix, key=key)
    if not isinstance(stored, dict) or set(stored) != {FIELD} or not isinstance(stored[FIELD], str):
        raise TamperedValueError(name, "the value is not encrypted")
    try:
        sealed = base64.b64decode(stored[FIELD], validate=True)
    except ValueError:
        raise TamperedValueError(name, "the value is not encrypted") from None
    value = json.loads(enc.open(sealed, store_row(prefix, key), name))
    if not isinstance(value, dict):
        raise TamperedValueError(name, "the sealed value is not an object")
    return value
