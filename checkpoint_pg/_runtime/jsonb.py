"""JSON text for JSONB columns, refused early with a typed error when PostgreSQL would refuse it."""

from __future__ import annotations

import json
import re
from typing import Any

# A NUL character as json.dumps writes it: ``\u0000`` after an even number of backslashes (an
# odd number means the text held a literal backslash followed by "u0000", which is fine).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


# One encoder for every call: `json.dumps` with non-default options builds a new one each time.
_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False)


def lone_surrogate(text: str) -> str | None:
    """The first lone UTF-16 surrogate in `text` (which UTF-8 cannot encode), or None."""
    if text.isascii():  # O(1) for the common case: CPython knows a string is ASCII
        return None
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


def jsonb_text(value: Any, what: str, error: type[Exception]) -> str:
    """`value` as JSON text; raise `error` (naming `what`) for what JSONB cannot hold.

    JSONB refuses the NUL character (``\\u0000``) and lone UTF-16 surrogates (``"\\ud800"``)
    anywhere, and NaN and infinities (not JSON).
    """
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to serialise") from None
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        raise error(f"{what} contains a NUL character, which PostgreSQL JSONB cannot store")
    bad = lone_surrogate(text)
    if bad is not None:
        raise error(
            f"{what} contains a lone surrogate (U+{ord(bad):04X}), which is not valid Unicode: "
            "PostgreSQL cannot store it"
        )
    return text
