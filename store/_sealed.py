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


def _plaintext(enc: RowBoundEncryption, stored: Any, prefix: str, key: str) -> bytes:
    name = row_name("store", prefix=prefix, key=key)
    if not is_sealed(stored) or not isinstance(stored[FIELD], str):
        raise TamperedValueError(name, "the value is not encrypted")
    try:
        sealed = base64.b64decode(stored[FIELD], validate=True)
    except ValueError:
        raise TamperedValueError(name, "the value is not encrypted") from None
    return enc.open(sealed, store_row(prefix, key), name)


def open_value(enc: RowBoundEncryption, stored: Any, prefix: str, key: str) -> dict[str, Any]:
    """The item value sealed in `stored`, checked against (prefix, key), else
    `TamperedValueError` naming the row."""
    value = json.loads(_plaintext(enc, stored, prefix, key))
    if not isinstance(value, dict):
        raise TamperedValueError(row_name("store", prefix=prefix, key=key), "not an object")
    return value


def is_sealed(stored: Any) -> bool:
    return isinstance(stored, dict) and set(stored) == {FIELD}


def key_id_of(enc: RowBoundEncryption, stored: Any) -> str | None:
    """The id of the key that sealed a stored value; None if it is not sealed."""
    if not is_sealed(stored) or not isinstance(stored[FIELD], str):
        return None
    try:
        return enc.key_id_of(base64.b64decode(stored[FIELD], validate=True))
    except ValueError:
        return None


def reseal(enc: RowBoundEncryption, stored: Any, prefix: str, key: str) -> str:
    """A stored value opened and sealed again with the current key, as JSON text."""
    plain = _plaintext(enc, stored, prefix, key)
    return json.dumps({FIELD: base64.b64encode(enc.seal(plain, store_row(prefix, key))).decode()})
