"""Glob patterns as PostgreSQL regular expressions: paths are matched in the database.

The patterns follow the include-glob contract of agent harnesses such as deepagents (the one
their backends share, which wcmatch implements there with ``BRACE | GLOBSTAR``):

- a pattern without ``/`` matches the file's name at any depth (``*.py`` matches ``a/b/c.py``);
- a pattern with ``/`` matches the path relative to the search root, ``**`` standing for any
  number of directories; a leading ``/`` anchors it there;
- ``*`` and ``?`` never cross a ``/``; ``[abc]``, ``[!abc]`` and ``{a,b}`` (nested too) work;
- a name starting with ``.`` is matched only by a segment that starts with ``.``, and ``**``
  does not descend into such directories;
- a ``..`` segment is refused (`InvalidPatternError`), as is a brace expansion of over
  `MAX_EXPANSIONS` patterns.

The expression uses only what Python's ``re`` and PostgreSQL's ARE both read the same way
(``(?:``, ``(?!``, ``[^/]``), which is how the tests check it against the harness's own matcher.
"""

from __future__ import annotations

import itertools

from app_data.errors import InvalidPatternError

__all__ = ["MAX_EXPANSIONS", "glob_likes", "glob_regex"]

MAX_EXPANSIONS = 1000
_SEGMENT = r"(?!\.)[^/]+"  # one directory that `**` may cross
_SPECIAL = set(".^$|()+*?{}[]\\")


def _literal(char: str) -> str:
    return "\\" + char if char in _SPECIAL else char


def _split_braces(pattern: str) -> tuple[int, int, list[str]] | None:
    """The first top-level ``{...}`` holding a top-level comma: start, end, alternatives."""
    depth, start, i = 0, -1, 0
    commas: list[int] = []
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            if depth == 0:
                start, commas = i, []
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0 and commas:
                cuts = [start, *commas, i]
                return start, i, [pattern[a + 1 : b] for a, b in itertools.pairwise(cuts)]
        elif char == "," and depth == 1:
            commas.append(i)
        i += 1
    return None


def _expand(pattern: str) -> list[str]:
    """Brace expansion, left to right, bounded by `MAX_EXPANSIONS`."""
    done: list[str] = []
    todo = [pattern]
    while todo:
        current = todo.pop()
        found = _split_braces(current)
        if found is None:
            done.append(current)
        else:
            start, end, options = found
            todo.extend(current[:start] + option + current[end + 1 :] for option in options)
        if len(done) + len(todo) > MAX_EXPANSIONS:
            raise InvalidPatternError(
                f"glob pattern {pattern!r} expands to more than {MAX_EXPANSIONS} patterns"
            )
    return done


def _bracket(segment: str, i: int) -> tuple[str, int] | None:
    """The class starting at ``segment[i] == '['`` and the index after it; None if unclosed."""
    j = i + 1
    negate = j < len(segment) and segment[j] in "!^"
    if negate:
        j += 1
    body_start = j
    if j < len(segment) and segment[j] == "]":
        j += 1
    while j < len(segment) and segment[j] != "]":
        j += 1
    if j >= len(segment):
        return None
    body = "".join("\\" + c if c in "\\[]^" else c for c in segment[body_start:j])
    return ("[^/" + body + "]" if negate else "(?!/)[" + body + "]"), j + 1


def _segment(segment: str) -> str:
    """One path segment of a pattern (not ``**``) as a regular expression."""
    out = [] if segment.startswith(".") else [r"(?!\.)"]
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "\\" and i + 1 < len(segment):
            out.append(_literal(segment[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            found = _bracket(segment, i)
            if found is not None:
                text, i = found
                out.append(text)
                continue
            out.append(r"\[")
        else:
            out.append(_literal(char))
        i += 1
    return "".join(out)


def _body(pattern: str) -> str:
    segments = pattern.split("/")
    out = ""
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out += f"(?:{_SEGMENT}/)*{_SEGMENT}" if last else f"(?:{_SEGMENT}/)*"
        else:
            out += _segment(segment) + ("" if last else "/")
    return out


def glob_regex(pattern: str) -> str:
    """A regular expression matching the paths, relative to the search root, that `pattern` does.

    Raises:
        InvalidInputError: the pattern has a ``..`` segment, or too many brace alternatives.
    """
    if ".." in pattern.replace("\\", "/").split("/"):
        raise InvalidPatternError(f"Path traversal not allowed in glob pattern {pattern!r}")
    anchored = "/" in pattern
    bodies = [_body(p.lstrip("/")) for p in _expand(pattern)]
    alternatives = "|".join(f"(?:{body})" for body in sorted(set(bodies)))
    return f"^(?:{alternatives})$" if anchored else f"^(?:.*/)?(?:{alternatives})$"


def _like_segment(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "\\" and i + 1 < len(segment):
            char, i = segment[i + 1], i + 1
            out.append("\\" + char if char in "%_\\" else char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char == "[" and _bracket(segment, i) is not None:
            out.append("_")
            i = _bracket(segment, i)[1] - 1  # type: ignore[index]
        else:
            out.append("\\" + char if char in "%_\\" else char)
        i += 1
    return "".join(out)


def _like(pattern: str, anchored: bool) -> str:
    segments = pattern.lstrip("/").split("/")
    out = "" if anchored else "%"
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        out += "%" if segment == "**" else _like_segment(segment) + ("" if last else "/")
    while "%%" in out:
        out = out.replace("%%", "%")
    return out


def glob_likes(pattern: str) -> list[str]:
    """``LIKE`` patterns (escape ``\\``) that every path `glob_regex` matches also matches.

    A cheap first filter: ``LIKE`` with its literal parts lets the database skip most paths
    before the regular expression (whose lookaheads cost more) runs. Call `glob_regex` first:
    it validates the pattern.
    """
    anchored = "/" in pattern
    return sorted({_like(p, anchored) for p in _expand(pattern)})
