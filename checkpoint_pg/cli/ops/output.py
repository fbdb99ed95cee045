"""How the operator commands print: plain aligned tables for people, JSON for scripts, progress.

Tables go to stdout as plain text (no colour, no markup: pipes and terminals read the same);
progress bars go to stderr and only when stderr is a terminal and ``--json`` is off, so a pipe
or a script never sees them. Channel values are made JSON-friendly by `jsonable` and shortened
for tables by `preview`.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from uuid import UUID

import click

__all__ = [
    "emit_json",
    "full_option",
    "human_bytes",
    "human_duration",
    "jsonable",
    "kv_table",
    "preview",
    "progress",
    "table",
    "timestamp",
]

PREVIEW_WIDTH = 72

full_option = click.option(
    "--full", is_flag=True, help="Whole checkpoint ids (tables shorten them to a unique prefix)."
)


def emit_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout."""
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def _grid(
    header: Sequence[str] | None, rows: Sequence[Sequence[str]], right: Sequence[bool]
) -> list[str]:
    """Rows of cells as aligned lines: two spaces between columns, a rule under the header."""
    lines = [list(row) for row in rows]
    everything = ([list(header)] if header else []) + lines
    widths = [max(len(row[i]) for row in everything) for i in range(len(everything[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if flush else cell.ljust(width)
            for cell, width, flush in zip(cells, widths, right, strict=True)
        ).rstrip()

    out = []
    if header:
        out += [line(header), "  ".join("-" * width for width in widths)]
    return out + [line(row) for row in lines]


def _lines(text: str | None) -> None:
    if text:
        click.echo(text)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    right: Sequence[str] = (),
) -> None:
    """Print a table on stdout, cells as plain text, aligned in columns."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    _lines(title)
    flush = [column in right for column in columns]
    click.echo("\n".join(_grid(list(columns), cells, flush)))


def kv_table(pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    """Print key/value pairs as two aligned columns without a header."""
    _lines(title)
    cells = [[key, "" if value is None else str(value)] for key, value in pairs]
    if cells:
        click.echo("\n".join(_grid(None, cells, [False, False])))


def note(message: str) -> None:
    """A line for people, on stderr (so it never mixes with a table or JSON on stdout)."""
    click.echo(message, err=True)


def bars_shown(enabled: bool = True) -> bool:
    """Whether `progress` draws a bar (stderr is a terminal): skip costly totals otherwise."""
    return enabled and sys.stderr.isatty()


@contextmanager
def progress(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields ``advance(n)``. A no-op off a terminal or if disabled."""
    if not bars_shown(enabled):
        yield lambda n: None
        return
    if total is None:  # no bar without a length: a running count on one line
        done = 0

        def count(n: int) -> None:
            nonlocal done
            done += n
            click.echo(f"\r{description}: {done}", err=True, nl=False)

        try:
            yield count
        finally:
            click.echo("\r\033[K", err=True, nl=False)
        return
    bar: Any
    with click.progressbar(length=total, label=description, file=sys.stderr, show_pos=True) as bar:
        yield bar.update


# -- values ------------------------------------------------------------------------------------


def human_bytes(n: int | float | None) -> str:
    """1536 -> "1.5 KiB"."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def timestamp(value: datetime | str | None) -> str:
    """A moment as every command prints it: UTC, to the second, ``2026-12-05 18:29:35Z``.

    Takes a datetime (naive ones are taken as UTC) or an ISO 8601 string (a checkpoint's
    ``ts``); ``"?"`` for None, and a string that is not a time is printed as it is.
    """
    if value is None:
        return "?"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


_DURATION_WORDS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def human_duration(duration: timedelta) -> str:
    """A duration in words: 30 days -> "30 days", 36 hours -> "1 day 12 hours"."""
    seconds = round(duration.total_seconds())
    words = []
    for unit, size in _DURATION_WORDS:
        count, seconds = divmod(seconds, size)
        if count:
            words.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(words) or "0 seconds"


def _is_message(value: Any) -> bool:
    try:
        from langchain_core.messages import BaseMessage
    except ImportError:  # pragma: no cover - a dependency
        return False
    return isinstance(value, BaseMessage)


def jsonable(value: Any) -> Any:
    """`value` as JSON-compatible data: messages and pydantic models dumped, bytes as base64,
    dates as ISO 8601; anything unknown as its ``repr``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (UUID, Decimal, PurePath)):
        return str(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2 models, LangChain messages included
        try:
            data = dump(mode="json", exclude_none=True)
        except Exception:  # a model that cannot dump itself: fall back to repr
            return repr(value)
        if _is_message(value):
            data = {"type": value.type, **data}
        return jsonable(data)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$type": type(value).__name__,
            **{f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    return repr(value)


def _message_preview(message: Any) -> str:
    content = message.content
    if not isinstance(content, str):
        content = json.dumps(jsonable(content), ensure_ascii=False)
    calls = getattr(message, "tool_calls", None) or []
    text = f"{message.type}: {content}"
    if calls:
        text += " [calls " + ", ".join(str(c.get("name")) for c in calls) + "]"
    return text


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def preview(value: Any, width: int = PREVIEW_WIDTH) -> str:
    """A one-line, at most `width` characters, human preview of a channel value."""
    if _is_message(value):
        return _shorten(_message_preview(value), width)
    if isinstance(value, (list, tuple)) and value and all(_is_message(v) for v in value):
        head = f"{len(value)} message{'s' if len(value) > 1 else ''}, last "
        return _shorten(head + _message_preview(value[-1]), width)
    if isinstance(value, str):
        return _shorten(json.dumps(value, ensure_ascii=False), width)
    return _shorten(json.dumps(jsonable(value), ensure_ascii=False, default=str), width)
