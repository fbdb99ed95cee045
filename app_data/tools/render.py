"""What the tools tell the model: short, plain text built from records (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from langgraph.store.base import SearchItem

from app_data.errors import InvalidInputError
from app_data.schemas import FileInfo, FileRecord, Page, ThoughtRecord

__all__ = [
    "deleted_file",
    "edited_file",
    "file_page",
    "file_text",
    "memories",
    "memory_text",
    "remembered",
    "saved_file",
    "saved_thought",
    "size",
    "stamp",
    "thoughts",
]


def size(n: int) -> str:
    """A byte count for people: ``812 B``, ``1.2 KiB``, ``3.4 MiB``."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def stamp(when: datetime) -> str:
    """A UTC timestamp to the second, as the `checkpoint-pg` commands print one."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _lines(n: int) -> str:
    return _plural(n, "line")


def file_page(page: Page[FileInfo], prefix: str | None) -> str:
    """A page of the file listing, with the cursor of the next page if there is one."""
    where = f" under {prefix!r}" if prefix else ""
    if not page.items:
        return f"No files{where}."
    rows = [f"{f.path}  ({size(f.size_bytes)}, updated {stamp(f.updated_at)})" for f in page.items]
    text = f"{_plural(len(page.items), 'file')}{where}, in path order:\n" + "\n".join(rows)
    if page.next_cursor:
        text += f'\nMore files follow: call list_files again with cursor="{page.next_cursor}".'
    return text


def file_text(
    record: FileRecord, start_line: int | None, end_line: int | None, max_chars: int
) -> str:
    """The file's content (lines `start_line`..`end_line`, 1-based, inclusive) under a header.

    Output past `max_chars` characters is cut at a line boundary, with a note saying where to
    continue reading.

    Raises:
        InvalidInputError: the range is outside the file or reversed.
    """
    lines = record.content.splitlines(keepends=True)
    total = len(lines)
    if total == 0:
        return f"{record.path} is empty."
    first = start_line or 1
    last = total if end_line is None else min(end_line, total)
    if first > total:
        raise InvalidInputError(
            f"start_line {first} is past the end of {record.path!r}, which has {_lines(total)}"
        )
    if end_line is not None and end_line < first:
        raise InvalidInputError(f"end_line {end_line} is before start_line {first}")
    shown: list[str] = []
    used = 0
    shown_last = first - 1
    for number in range(first, last + 1):
        line = lines[number - 1]
        if used + len(line) > max_chars:
            if not shown:  # one very long line: show its beginning
                shown.append(line[:max_chars] + "\n")
                shown_last = number
            break
        shown.append(line)
        used += len(line)
        shown_last = number
    body = "".join(shown)
    if not body.endswith("\n"):
        body += "\n"
    if first == 1 and shown_last == total:
        header = f"{record.path} ({_lines(total)}, {size(record.size_bytes)}):"
    else:
        header = f"{record.path}, lines {first}-{shown_last} of {total}:"
    text = f"{header}\n{body}"
    if shown_last < last:
        text += (
            f"[output cut at {max_chars} characters: lines {shown_last + 1}-{last} not shown; "
            f"call read_file with start_line={shown_last + 1} to continue]"
        )
    return text.rstrip("\n")


def saved_file(record: FileRecord) -> str:
    """Confirmation of a write."""
    created = record.created_at == record.updated_at
    verb = "Created" if created else "Saved"
    return f"{verb} {record.path} ({size(record.size_bytes)}, {_count_lines(record.content)})."


def edited_file(record: FileRecord, replace_all: bool) -> str:
    """Confirmation of an edit."""
    what = "every occurrence of old_text" if replace_all else "old_text"
    return (
        f"Edited {record.path}: replaced {what}. The file is now {size(record.size_bytes)}, "
        f"{_count_lines(record.content)}."
    )


def deleted_file(info: FileInfo) -> str:
    """Confirmation of a soft delete."""
    return f"Deleted {info.path} (kept as deleted: the application can restore it)."


def _count_lines(content: str) -> str:
    return _lines(len(content.splitlines()))


def saved_thought(thought: ThoughtRecord) -> str:
    """Confirmation of a saved thought."""
    return f"Saved a {thought.kind} thought (id {thought.id})."


def _indented(text: str) -> str:
    return text.replace("\n", "\n    ")


def thoughts(items: Sequence[ThoughtRecord], kind: str | None) -> str:
    """Recent thoughts, newest first."""
    label = f"{kind} thoughts" if kind else "thoughts"
    if not items:
        return f"No {label} saved yet for this project."
    return f"{label.capitalize()}, newest first ({len(items)}):\n" + _thought_rows(items)


def found_thoughts(items: Sequence[ThoughtRecord], query: str) -> str:
    """Thoughts matching a full-text query, best match first."""
    if not items:
        return f"No thoughts of this project match {query!r}."
    return f"Thoughts matching {query!r}, best first ({len(items)}):\n" + _thought_rows(items)


def _thought_rows(items: Sequence[ThoughtRecord]) -> str:
    return "\n".join(f"- [{stamp(t.created_at)}] {t.kind}: {_indented(t.content)}" for t in items)


def memory_text(value: dict[str, Any]) -> str:
    """The text of a stored memory (its ``text`` field, else the value as it is)."""
    text = value.get("text")
    return text if isinstance(text, str) else str(value)


def memories(items: Iterable[SearchItem], query: str) -> str:
    """Search results from long-term memory."""
    rows = [
        f"- {memory_text(item.value)}"
        + (f"  (similarity {item.score:.2f})" if item.score is not None else "")
        for item in items
    ]
    if not rows:
        return f"No memory matches {query!r}."
    return f"Memories matching {query!r} ({len(rows)}):\n" + "\n".join(rows)


def remembered(key: str) -> str:
    """Confirmation of a saved memory."""
    return f"Remembered (memory key {key}); search_memory will find it in later runs."
