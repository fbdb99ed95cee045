"""Namespaces as the ``prefix`` column holds them: labels joined by dots."""

from __future__ import annotations

import re
from collections.abc import Sequence


def ns_text(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def ns_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


def below_pattern(namespace: Sequence[str]) -> str:
    """A LIKE pattern for every namespace below `namespace`."""
    text = ns_text(namespace)
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"


def match_pattern(path: Sequence[str], match_type: str) -> str:
    """A regular expression for list_namespaces' prefix or suffix condition (``*``: any
    label)."""
    segments = ("[^.]+" if part == "*" else re.escape(part) for part in path)
    body = r"\.".join(segments)
    return rf"(^|\.){body}$" if match_type == "suffix" else rf"^{body}(\.|$)"
