"""JSON text for JSONB columns, refused early with a typed error when PostgreSQL would refuse it."""

from __future__ import annotations

import json
from typing import Any


def jsonb_text(value: Any, what: str, error: type[Exception], *, allow_nan: bool = False) -> str:
    """`value` as JSON text; raise `error` (naming `what`) for what JSONB cannot hold.

    JSONB refuses the NUL character (``\\u0000``) anywhere; NaN and infinities are refused
    unless `allow_nan` (LangGraph's own metadata may carry them as JSON numbers' extension).
    """
    try:
        text = json.dumps(value, allow_nan=allow_nan, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to serialise") from None
    if "\\u0000" in text or "\x00" in text:
        raise error(f"{what} contains a NUL character, which PostgreSQL JSONB cannot store")
    return text
