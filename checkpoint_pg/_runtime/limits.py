"""PostgreSQL's limits on what a statement may carry, checked before the statement is sent.

A value past one of these would come back as a server error (``ProgramLimitExceeded``,
``NumericValueOutOfRange``, ``DatetimeFieldOverflow``) or a Python ``OverflowError`` halfway
through an operation; the packages raise their own typed errors naming the limit instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

__all__ = [
    "BIGINT_MAX",
    "BTREE_MAX_ROW_BYTES",
    "INT_MAX",
    "MAX_AGE",
    "MAX_AGE_TEXT",
    "btree_row_bytes",
    "over_btree_row",
]

# The largest btree index entry PostgreSQL stores with the default 8 kB pages: "index row size
# ... exceeds btree version 4 maximum 2704".
BTREE_MAX_ROW_BYTES = 2704
# An index entry's fixed overhead (its header, and the alignment padding after it), and what
# each column may add beyond its bytes: a 4-byte length header and up to 7 bytes of padding.
_ROW_OVERHEAD = 16
_COLUMN_OVERHEAD = 11

INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

# The oldest instant an age may reach back to, counted from now: Python's `datetime` stops at
# the year 1 (PostgreSQL's timestamps at 4713 BC), so ages are capped at 1,000 years.
MAX_AGE = timedelta(days=365_000)
MAX_AGE_TEXT = "1000 years (365000 days)"


def btree_row_bytes(parts: Iterable[str]) -> int:
    """A conservative size of the btree entry that holds `parts` (text columns, uncompressed)."""
    return _ROW_OVERHEAD + sum(len(part.encode()) + _COLUMN_OVERHEAD for part in parts)


def over_btree_row(parts: Iterable[str]) -> int | None:
    """The entry's size when it is over PostgreSQL's btree limit, else None.

    Counted in characters first: a character takes at most 4 bytes in UTF-8, so keys that fit
    at 4 bytes each (every key a graph makes) need no encoding on the hot path.
    """
    parts = list(parts)
    chars = sum(map(len, parts))
    if _ROW_OVERHEAD + 4 * chars + _COLUMN_OVERHEAD * len(parts) <= BTREE_MAX_ROW_BYTES:
        return None
    size = btree_row_bytes(parts)
    return size if size > BTREE_MAX_ROW_BYTES else None
