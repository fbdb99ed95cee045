"""`ProjectBackend`: a project's files as a deepagents ``BackendProtocol``, searched in PostgreSQL.

`ProjectTools` gives plain LangGraph graphs tools over `AppDataService`; this is the same
service behind deepagents' own file tools (``ls``, ``read_file``, ``write_file``,
``edit_file``, ``glob``, ``grep``), so ``create_deep_agent(..., backend=ProjectBackend(...))``
keeps an agent's files in the project. One service, two faces: every rule (paths, sizes,
ownership, soft delete, the locked read-modify-write of an edit) lives in the service.

- Scope: the user and project come from the run (`app_data.tools.scope`: config or context),
  or from a fixed `ToolScope` given to the constructor for use outside a graph; never from the
  model. Each call checks ownership in its own transaction.
- Paths: deepagents' absolute paths (``/src/a.py``) are the project's relative paths
  (``src/a.py``); ``/`` is the project. Traversal and other refused paths are error results.
- Work done in PostgreSQL: ``grep`` (trigram index, literal ``LIKE``), ``glob`` (a regular
  expression on paths), ``ls`` (one grouped scan), ``read`` (the line window is cut there).
- Results and error strings follow deepagents' ``StateBackend``; `DELIBERATE_DIFFERENCES`
  lists where they do not, and ``docs/deep-agents.md`` explains each.

Blocking methods run the service on the `EventLoopThread` that owns its database (as
`ProjectTools.open` sets up); the ``a``-methods await it directly, or through that thread.
"""

from __future__ import annotations

from checkpoint_pg._runtime.extras import require

require("app_data.tools.backend", "deepagents", needs=("app", "deepagents"))

import base64  # noqa: E402
from collections.abc import Callable, Coroutine, Mapping  # noqa: E402
from typing import Any, TypeVar, cast  # noqa: E402

from deepagents.backends.protocol import (  # noqa: E402
    BackendProtocol,
    DeleteResult,
    EditResult,
    FileData,
    FileDownloadResponse,
    FileInfo,
    FileUploadResponse,
    GlobResult,
    GrepMatch,
    GrepResult,
    LsResult,
    ReadResult,
    WriteResult,
)
from langgraph.config import get_config  # noqa: E402

from app_data.errors import (  # noqa: E402
    AmbiguousEditError,
    AppDataError,
    EditError,
    InvalidPathError,
    InvalidPatternError,
    TextNotFoundError,
)
from app_data.schemas import GrepHits, GrepLine, normalize_path  # noqa: E402
from app_data.service import AppDataService  # noqa: E402
from app_data.tools.loop import EventLoopThread  # noqa: E402
from app_data.tools.scope import ToolScope, resolve_scope  # noqa: E402

__all__ = ["DELIBERATE_DIFFERENCES", "ProjectBackend"]

T = TypeVar("T")

DELIBERATE_DIFFERENCES = {
    "bad_path": "a refused path (traversal, backslash, NUL, ...) is an error result naming the "
    "problem, not an exception",
    "no_op_edit": "an edit whose old and new text are equal is refused (it would change nothing)",
    "eof_newline_hint": "a missing old_string gets one message, without deepagents' special "
    "wording for a trailing newline the file lacks",
    "line_breaks": "lines end at \\n only (\\r\\n is read as \\n); deepagents' read also "
    "breaks lines at a lone \\r and other Unicode line separators",
    "order": "grep and glob return paths in path order (StateBackend: insertion or "
    "modification order)",
    "binary_by_encoding": "a file is binary when it was stored as base64 (upload of bytes that "
    "are not UTF-8), not by its extension",
    "directories": "a directory is a prefix of file paths: ls of a missing directory lists "
    "nothing (FilesystemBackend: path_not_found)",
}


def _project_path(path: str) -> str:
    """deepagents' ``/a/b`` as the project's ``a/b`` (the service validates the rest)."""
    if not isinstance(path, str):
        raise InvalidPathError(f"a path must be a string, not {type(path).__name__}")
    if path.startswith("~") or ".." in path.replace("\\", "/").split("/"):
        raise InvalidPathError(f"Path traversal not allowed: {path}")
    return path.lstrip("/")


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _iso(value: Any) -> str:
    return "" if value is None else str(value.isoformat())


def _error(exc: AppDataError) -> str:
    if isinstance(exc, InvalidPatternError):
        return str(exc)  # deepagents reports a refused glob in these very words, unprefixed
    return f"Error: {str(exc).rstrip('.')}"


def _edit_error(exc: AppDataError, old: str) -> str:
    """deepagents' wording for the edit failures it has words for."""
    if isinstance(exc, TextNotFoundError):
        return f"Error: String not found in file: '{old}'"
    if isinstance(exc, AmbiguousEditError):
        return (
            f"Error: String '{old}' appears {exc.occurrences} times in file. Use "
            "replace_all=True to replace all instances, or provide a more specific string "
            "with surrounding context."
        )
    if isinstance(exc, EditError) and not old:
        return "Error: old_string cannot be empty. Provide the exact text to replace."
    if isinstance(exc, EditError) and "binary" in str(exc):
        return "Error: Cannot edit binary files with text replacements."
    return _error(exc)


def _grep_matches(hits: GrepHits, context_lines: int, pattern: str) -> list[GrepMatch]:
    """Matches with their context as deepagents' `FilesystemBackend` gives it: context lines
    never repeat a match nor hold the pattern."""
    matched = {(m.path, m.line) for m in hits.matches}
    around: dict[str, list[GrepLine]] = {}
    for line in sorted(hits.context, key=lambda c: (c.path, c.line)):
        if (line.path, line.line) not in matched and pattern not in line.text:
            around.setdefault(line.path, []).append(line)
    out: list[GrepMatch] = []
    for m in hits.matches:
        match: dict[str, Any] = {"path": "/" + m.path, "line": m.line, "text": m.text}
        if context_lines:
            near = around.get(m.path, [])
            match["context_before"] = [
                {"line": c.line, "text": c.text}
                for c in near
                if m.line - context_lines <= c.line < m.line
            ]
            match["context_after"] = [
                {"line": c.line, "text": c.text}
                for c in near
                if m.line < c.line <= m.line + context_lines
            ]
        out.append(cast(GrepMatch, match))
    return out


class ProjectBackend(BackendProtocol):
    """A project's files for deepagents (see the module docstring).

    Args:
        service: the data service (its database is the project files' database).
        loop: the loop thread owning `service`'s database; required for the blocking methods.
        scope: a fixed user and project; by default each call reads them from the run.
        ignore_case: make ``grep`` case-insensitive (the protocol's grep is case-sensitive).
    """

    def __init__(
        self,
        service: AppDataService,
        *,
        loop: EventLoopThread | None = None,
        scope: ToolScope | None = None,
        ignore_case: bool = False,
    ) -> None:
        self.service = service
        self.loop = loop
        self.scope = scope
        self.ignore_case = ignore_case

    # -- running one operation, blocking or async ---------------------------------------------

    def _scope(self) -> ToolScope:
        if self.scope is not None:
            return self.scope
        try:
            config: Mapping[str, Any] | None = get_config()
        except RuntimeError:
            config = None
        context = None
        if config is not None:
            from langgraph.runtime import get_runtime

            try:
                context = get_runtime().context
            except RuntimeError:
                context = None
        return resolve_scope(config, context)

    def _blocking(
        self, op: Callable[[ToolScope], Coroutine[Any, Any, T]], failed: Callable[[AppDataError], T]
    ) -> T:
        try:
            scope = self._scope()
        except AppDataError as exc:
            return failed(exc)
        if self.loop is None:
            raise RuntimeError(
                "this ProjectBackend is async-only (no loop thread owns the database): run the "
                "agent with ainvoke/astream, or give it the loop of ProjectTools.open(url)"
            )
        return self.loop.run(self._guarded(op(scope), failed))

    async def _async(
        self, op: Callable[[ToolScope], Coroutine[Any, Any, T]], failed: Callable[[AppDataError], T]
    ) -> T:
        try:
            scope = self._scope()
        except AppDataError as exc:
            return failed(exc)
        work = self._guarded(op(scope), failed)
        return await (self.loop.arun(work) if self.loop is not None else work)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, T], failed: Callable[[AppDataError], T]) -> T:
        try:
            return await work
        except AppDataError as exc:
            return failed(exc)

    # -- the operations (one async source each; the public methods below only dispatch) -------

    async def _ls(self, scope: ToolScope, path: str) -> LsResult:
        entries = await self.service.list_directory(
            scope.project_id, _project_path(path), owner=scope.user_id
        )
        infos: list[FileInfo] = [
            {
                "path": "/" + e.path + ("/" if e.is_dir else ""),
                "is_dir": e.is_dir,
                "size": e.size_bytes,
                "modified_at": _iso(e.updated_at),
            }
            for e in entries
        ]
        infos.sort(key=lambda info: info["path"])
        return LsResult(entries=infos)

    async def _read(self, scope: ToolScope, file_path: str, offset: int, limit: int) -> ReadResult:
        offset, limit = max(int(offset), 0), max(int(limit), 0)
        path = _project_path(file_path)
        if limit == 0:
            # The protocol's "no lines requested": the file is not inspected, only found.
            found = await self.service.get_files(scope.project_id, [path], owner=scope.user_id)
            if not found:
                return ReadResult(error=f"File '{file_path}' not found")
            record = next(iter(found.values()))
            return ReadResult(
                file_data=FileData(
                    content="",
                    encoding=record.encoding,
                    created_at=_iso(record.created_at),
                    modified_at=_iso(record.updated_at),
                ),
                no_lines_requested=True,
            )
        window = await self.service.read_lines(
            scope.project_id, path, offset=offset, limit=limit, owner=scope.user_id
        )
        if window is None:
            return ReadResult(error=f"File '{file_path}' not found")
        if window.past_end:
            return ReadResult(
                error=f"Line offset {offset} exceeds file length ({window.total_lines} lines)"
            )
        sliced = window.start_line is not None
        data = FileData(
            # Like deepagents, a window of text reads with \n line breaks only.
            content=_lf(window.text) if sliced else window.text,
            encoding=window.encoding,
            created_at=_iso(window.created_at),
            modified_at=_iso(window.updated_at),
        )
        if window.start_line is None or window.end_line is None:
            return ReadResult(file_data=data)
        return ReadResult(
            file_data=data,
            total_lines=window.total_lines,
            start_line=window.start_line,
            end_line=window.end_line,
            next_offset=window.end_line if window.end_line < window.total_lines else None,
        )

    async def _write(self, scope: ToolScope, file_path: str, content: str) -> WriteResult:
        await self.service.save_file(
            scope.project_id, _project_path(file_path), content, owner=scope.user_id
        )
        return WriteResult(path=file_path)

    async def _edit(
        self, scope: ToolScope, file_path: str, old: str, new: str, replace_all: bool
    ) -> EditResult:
        try:
            edited = await self.service.edit_file(
                scope.project_id,
                _project_path(file_path),
                old,
                new,
                replace_all=replace_all,
                owner=scope.user_id,
            )
        except EditError as exc:
            return EditResult(error=_edit_error(exc, old))
        if edited is None:
            return EditResult(error=f"Error: File '{file_path}' not found")
        return EditResult(path=file_path, occurrences=edited.occurrences)

    async def _delete(self, scope: ToolScope, file_path: str) -> DeleteResult:
        path = _project_path(file_path).rstrip("/")
        if not path:
            return DeleteResult(error="Error: refusing to delete the whole project")
        deleted = await self.service.delete_tree(scope.project_id, path, owner=scope.user_id)
        if not deleted:
            return DeleteResult(error=f"Error: File '{file_path}' not found")
        return DeleteResult(path=file_path)

    async def _grep(
        self,
        scope: ToolScope,
        pattern: str,
        path: str | None,
        glob: str | None,
        max_count: int | None,
        context_lines: int,
    ) -> GrepResult:
        if context_lines < 0:
            raise ValueError("context_lines must be non-negative")
        hits = await self.service.grep_files(
            scope.project_id,
            pattern,
            root=_project_path(path or "/"),
            glob=glob or None,
            ignore_case=self.ignore_case,
            max_count=max_count,
            context_lines=context_lines,
            owner=scope.user_id,
        )
        return GrepResult(
            matches=_grep_matches(hits, context_lines, pattern), truncated=hits.truncated
        )

    async def _glob(self, scope: ToolScope, pattern: str, path: str | None) -> GlobResult:
        found = await self.service.find_files(
            scope.project_id, pattern, root=_project_path(path or "/"), owner=scope.user_id
        )
        return GlobResult(
            matches=[
                {
                    "path": "/" + f.path,
                    "is_dir": False,
                    "size": f.size_bytes,
                    "modified_at": _iso(f.updated_at),
                }
                for f in found
            ]
        )

    async def _upload(
        self, scope: ToolScope, files: list[tuple[str, bytes]]
    ) -> list[FileUploadResponse]:
        answers: list[FileUploadResponse] = []
        batch: list[dict[str, str]] = []
        for path, content in files:
            try:
                project_path = normalize_path(_project_path(path))
            except InvalidPathError:
                answers.append(FileUploadResponse(path=path, error="invalid_path"))
                continue
            try:
                text, encoding = content.decode("utf-8"), "utf-8"
                if "\x00" in text:
                    raise UnicodeDecodeError("utf-8", content, 0, 1, "NUL byte")
            except UnicodeDecodeError:
                text, encoding = base64.b64encode(content).decode("ascii"), "base64"
            batch.append({"path": project_path, "content": text, "encoding": encoding})
            answers.append(FileUploadResponse(path=path))
        if batch:
            await self.service.save_files(scope.project_id, batch, owner=scope.user_id)
        return answers

    async def _download(self, scope: ToolScope, paths: list[str]) -> list[FileDownloadResponse]:
        wanted: dict[str, str] = {}
        answers: list[FileDownloadResponse] = []
        for path in paths:
            try:
                wanted[path] = normalize_path(_project_path(path))
            except InvalidPathError:
                continue
        found = await self.service.get_files(
            scope.project_id, list(wanted.values()), owner=scope.user_id
        )
        for path in paths:
            record = found.get(wanted.get(path, "\x00"))
            if path not in wanted:
                answers.append(FileDownloadResponse(path=path, error="invalid_path"))
            elif record is None:
                answers.append(FileDownloadResponse(path=path, error="file_not_found"))
            elif record.encoding == "base64":
                answers.append(
                    FileDownloadResponse(path=path, content=base64.b64decode(record.content))
                )
            else:
                answers.append(FileDownloadResponse(path=path, content=record.content.encode()))
        return answers

    # -- BackendProtocol: each method and its async twin dispatch to the operation above ------

    def ls(self, path: str) -> LsResult:
        return self._blocking(lambda s: self._ls(s, path), _ls_failed)

    async def als(self, path: str) -> LsResult:
        return await self._async(lambda s: self._ls(s, path), _ls_failed)

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return self._blocking(lambda s: self._read(s, file_path, offset, limit), _read_failed)

    async def aread(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return await self._async(lambda s: self._read(s, file_path, offset, limit), _read_failed)

    def write(self, file_path: str, content: str) -> WriteResult:
        return self._blocking(lambda s: self._write(s, file_path, content), _write_failed)

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        return await self._async(lambda s: self._write(s, file_path, content), _write_failed)

    def edit(
        self, file_path: str, old_string: str, new_string: str, replace_all: bool = False
    ) -> EditResult:
        op = lambda s: self._edit(s, file_path, old_string, new_string, replace_all)  # noqa: E731
        return self._blocking(op, _edit_failed)

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, replace_all: bool = False
    ) -> EditResult:
        op = lambda s: self._edit(s, file_path, old_string, new_string, replace_all)  # noqa: E731
        return await self._async(op, _edit_failed)

    def delete(self, file_path: str) -> DeleteResult:
        return self._blocking(lambda s: self._delete(s, file_path), _delete_failed)

    async def adelete(self, file_path: str) -> DeleteResult:
        return await self._async(lambda s: self._delete(s, file_path), _delete_failed)

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
        context_lines: int = 0,
    ) -> GrepResult:
        op = lambda s: self._grep(s, pattern, path, glob, max_count, context_lines)  # noqa: E731
        return self._blocking(op, _grep_failed)

    async def agrep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
        context_lines: int = 0,
    ) -> GrepResult:
        op = lambda s: self._grep(s, pattern, path, glob, max_count, context_lines)  # noqa: E731
        return await self._async(op, _grep_failed)

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        return self._blocking(lambda s: self._glob(s, pattern, path), _glob_failed)

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        return await self._async(lambda s: self._glob(s, pattern, path), _glob_failed)

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return self._blocking(lambda s: self._upload(s, files), _batch_failed(files))

    async def aupload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return await self._async(lambda s: self._upload(s, files), _batch_failed(files))

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return self._blocking(lambda s: self._download(s, paths), _downloads_failed(paths))

    async def adownload_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return await self._async(lambda s: self._download(s, paths), _downloads_failed(paths))


# -- how a failure of the service reads in each result type ---------------------------------


def _ls_failed(exc: AppDataError) -> LsResult:
    return LsResult(error=_error(exc))


def _read_failed(exc: AppDataError) -> ReadResult:
    return ReadResult(error=_error(exc))


def _write_failed(exc: AppDataError) -> WriteResult:
    return WriteResult(error=_error(exc))


def _edit_failed(exc: AppDataError) -> EditResult:
    return EditResult(error=_error(exc))


def _delete_failed(exc: AppDataError) -> DeleteResult:
    return DeleteResult(error=_error(exc))


def _grep_failed(exc: AppDataError) -> GrepResult:
    return GrepResult(error=_error(exc))


def _glob_failed(exc: AppDataError) -> GlobResult:
    return GlobResult(error=_error(exc))


def _batch_failed(
    files: list[tuple[str, bytes]],
) -> Callable[[AppDataError], list[FileUploadResponse]]:
    return lambda exc: [FileUploadResponse(path=p, error=_error(exc)) for p, _ in files]


def _downloads_failed(paths: list[str]) -> Callable[[AppDataError], list[FileDownloadResponse]]:
    return lambda exc: [FileDownloadResponse(path=p, error=_error(exc)) for p in paths]
