"""Checks of a batch's ops and values, before anything is sent: typed errors, not server
errors halfway through a batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    SearchOp,
)

from checkpoint_pg._runtime.jsonb import jsonb_text, lone_surrogate
from checkpoint_pg._runtime.limits import (
    BIGINT_MAX,
    BTREE_MAX_ROW_BYTES,
    INT_MAX,
    over_btree_row,
)
from store._namespace import ns_text
from store.errors import InvalidValueError

MAX_KEY_CHARS = 1024
MAX_VALUE_BYTES = 255 * 1024 * 1024  # jsonb's own limit is 256 MB
# `ttl_minutes` is an INT column: a TTL of up to 2**31 - 1 minutes (about 4085 years) fits it,
# and its expiry time fits a timestamp.
MAX_TTL_MINUTES = 2**31 - 1


def valid_key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidValueError(f"an item key must be a string, not {type(key).__name__}")
    if "\x00" in key:
        raise InvalidValueError("an item key contains a NUL character")
    bad = lone_surrogate(key)
    if bad is not None:
        raise InvalidValueError(
            f"an item key contains a lone surrogate (U+{ord(bad):04X}), which is not valid Unicode"
        )
    if len(key) > MAX_KEY_CHARS:
        raise InvalidValueError(f"an item key is {len(key)} characters; at most {MAX_KEY_CHARS}")
    return key


def valid_labels(labels: Any, what: str) -> tuple[str, ...]:
    """`labels` as a tuple; refuse a plain string (it would be split into one label per
    character) and labels PostgreSQL text cannot hold. LangGraph checks the rest."""
    if isinstance(labels, str) or not isinstance(labels, (tuple, list)):
        raise InvalidNamespaceError(
            f"{what} must be a tuple of strings, not {type(labels).__name__}: {labels!r}"
        )
    for label in labels:
        bad = lone_surrogate(label) if isinstance(label, str) else None
        if bad is not None:
            raise InvalidNamespaceError(
                f"namespace label {label!r} contains a lone surrogate (U+{ord(bad):04X}), "
                "which is not valid Unicode"
            )
    return labels if isinstance(labels, tuple) else tuple(labels)


def with_tuple_namespace(op: Op) -> Op:
    """`op` with its namespace checked by `valid_labels` and made a tuple (`op` itself when it
    already is one: a copy costs more than the whole check)."""
    if isinstance(op, (GetOp, PutOp)):
        namespace = valid_labels(op.namespace, "a namespace")
        return op if namespace is op.namespace else op._replace(namespace=namespace)
    if isinstance(op, SearchOp):
        prefix = valid_labels(op.namespace_prefix, "a namespace prefix")
        return op if prefix is op.namespace_prefix else op._replace(namespace_prefix=prefix)
    if isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            valid_labels(condition.path, f"a {condition.match_type} to match")
    return op


def check_put_namespace(namespace: tuple[str, ...]) -> None:
    if not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(
            f'Root label for namespace cannot be "langgraph". Got: {namespace}'
        )


def check_key_row(namespace: tuple[str, ...], key: str, field_name: str | None = None) -> None:
    """Refuse an item whose (namespace, key) would not fit a btree index row of PostgreSQL:
    the namespace is stored as its labels joined by dots, in the primary key with the key (and
    the field name, for a vector)."""
    parts = [ns_text(namespace), key] + ([] if field_name is None else [field_name])
    size = over_btree_row(parts)
    if size is not None:
        what = "namespace, key and indexed field" if field_name is not None else "namespace and key"
        raise InvalidNamespaceError(
            f"the item's {what} take about {size} bytes together ({len(namespace)} labels); "
            f"PostgreSQL's btree index rows hold at most {BTREE_MAX_ROW_BYTES} bytes"
        )


def value_json(value: Any) -> str:
    if not isinstance(value, Mapping):
        raise InvalidValueError(f"an item value must be a dict, not {type(value).__name__}")
    text = jsonb_text(value, "the item value", InvalidValueError)
    if len(text) > MAX_VALUE_BYTES // 4 and len(text.encode()) > MAX_VALUE_BYTES:
        raise InvalidValueError("the item value is larger than the 255 MB a JSONB value can hold")
    return text


def check_index_fields(index: Any) -> None:
    """A put's ``index=``: None (the store's fields), False (none) or a list of field paths."""
    if index is None or index is False:
        return
    if isinstance(index, str) or not isinstance(index, (list, tuple)):
        raise InvalidValueError(
            f"index must be False, None or a list of field paths, not {type(index).__name__}"
        )
    for path in index:
        if not isinstance(path, str) or not path or "\x00" in path or lone_surrogate(path):
            raise InvalidValueError(f"index holds {path!r}, which is not a field path")


def valid_ttl(ttl: Any) -> float | None:
    if ttl is None or isinstance(ttl, NotProvided):
        return None
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool):
        raise InvalidValueError(f"ttl must be a number of minutes, not {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidValueError(f"ttl must be a positive number of minutes, got {ttl!r}")
    if ttl > MAX_TTL_MINUTES:
        raise InvalidValueError(
            f"ttl is {ttl!r} minutes; at most {MAX_TTL_MINUTES} (about 4085 years) are allowed"
        )
    return float(ttl)


def valid_count(value: Any, what: str, maximum: int = BIGINT_MAX) -> int:
    """A non-negative int of at most `maximum` (PostgreSQL's bigint, or its int)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValueError(f"{what} must be a non-negative int, got {value!r}")
    if value > maximum:
        kind = "int" if maximum == INT_MAX else "bigint"
        raise InvalidValueError(
            f"{what} is {value}; at most {maximum} (PostgreSQL's {kind}) is allowed"
        )
    return value
