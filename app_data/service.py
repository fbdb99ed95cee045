"""The application data service: validated operations, each one unit of work.

Every public method validates its arguments with the pydantic models of `app_data.schemas`
(nothing reaches the database otherwise), opens exactly one transaction through
`Database.transaction`, runs repository calls in it and returns immutable records.

Error contract: a lookup, or a change to one row, that finds nothing returns ``None``; counts
are returned for bulk deletions; every failure raises an `app_data.errors.AppDataError`
subclass (`InvalidInputError`, `InvalidPathError`, `ContentTooLargeError`,
`UnknownProjectError`, `ConflictError`, `DatabaseUnavailableError`, ...). No method reports
failure through ``None`` or ``False``.

Time: one reading of the injectable `clock` per unit of work, timezone-aware UTC; a clock that
returns naive datetimes is refused (`InvalidInputError`).

Ownership: every file and thought method takes a keyword-only ``owner`` (a user id). When it is
given, the unit of work first checks that the project belongs to that user, in the same
transaction, and raises `ProjectAccessError` (a missing and a foreign project are not told
apart) before anything is read or written. The agent tools always pass it.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app_data.errors import (
    AmbiguousEditError,
    ContentTooLargeError,
    EditError,
    InvalidCursorError,
    InvalidInputError,
    ProjectAccessError,
    TextNotFoundError,
)
from app_data.globs import glob_likes, glob_regex
from app_data.models import utcnow
from app_data.repositories import (
    AgentThreadRepository,
    FileRepository,
    FileRow,
    ProjectRepository,
    ThoughtRepository,
    UserRepository,
)
from app_data.schemas import (
    DirectoryEntry,
    EditedFile,
    FileEdit,
    FileInfo,
    FileQuery,
    FileRecord,
    FileRef,
    FileWindow,
    FileWrite,
    GrepHits,
    GrepLine,
    Limits,
    Page,
    ProjectCreate,
    ProjectPageQuery,
    ProjectRecord,
    ProjectRef,
    ProjectStatusChange,
    SandboxChange,
    ThoughtCreate,
    ThoughtQuery,
    ThoughtRecord,
    ThoughtRetention,
    ThreadSummary,
    UserCreate,
    UserRecord,
    UserRef,
    WalletRef,
    decode_cursor,
    encode_cursor,
    normalize_path,
    parse,
)
from app_data.session import Database, HealthReport
from checkpoint_pg._runtime.limits import MAX_AGE, MAX_AGE_TEXT

__all__ = ["AppDataService"]

R = TypeVar("R")
FileInput = FileWrite | Mapping[str, Any] | tuple[str, str]


def _utf8_size(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} is not valid Unicode (lone surrogate)") from None


def _replace_exact(content: str, edit: FileEdit) -> tuple[str, int]:
    """`content` with `edit.old_text` replaced by `edit.new_text`, exactly (no patterns), and
    how many occurrences were replaced."""
    if edit.old_text == "":
        raise EditError("old_text is empty: give the exact text to replace")
    if edit.old_text == edit.new_text:
        raise EditError("old_text and new_text are the same: the edit would change nothing")
    found = content.count(edit.old_text)
    if found == 0:
        raise TextNotFoundError(
            f"old_text does not occur in {edit.path!r}: read the file and copy the text to "
            "replace exactly, whitespace and line breaks included"
        )
    if found > 1 and not edit.replace_all:
        raise AmbiguousEditError(
            f"old_text occurs {found} times in {edit.path!r}: include more of the surrounding "
            "text so that it occurs once, or set replace_all to replace every occurrence",
            found,
        )
    return content.replace(edit.old_text, edit.new_text), found


_LANGUAGE = re.compile(r"[a-z][a-z_]{0,62}")


def _root(raw: str) -> str:
    """A search root: ``""`` (the whole project) or a normalised path (a file or directory)."""
    if not isinstance(raw, str):
        raise InvalidInputError(f"a path must be a string, not {type(raw).__name__}")
    return "" if raw.strip("/") in ("", ".") else normalize_path(raw.strip("/"))


def _count(value: Any, what: str, *, lowest: int = 0, highest: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise InvalidInputError(f"{what} must be an int from {lowest} to {highest}")
    return value


def _time_key(cursor: str, listing: str) -> tuple[datetime, str]:
    stamp, row_id = decode_cursor(listing, cursor, 2)
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidCursorError("the pagination cursor is malformed") from None
    if when.tzinfo is None:
        raise InvalidCursorError("the pagination cursor is malformed")
    return when, row_id


class AppDataService:
    """Users, projects, files and thoughts over one `Database`.

    Args:
        db: the database (its settings provide the size limits unless `limits` is given).
        limits: size limits to enforce instead of the settings'.
        clock: returns the current time, timezone-aware (tests inject a fixed clock).
    """

    def __init__(
        self,
        db: Database,
        *,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        settings = db.settings
        self.limits = limits or Limits(
            max_file_bytes=settings.max_file_bytes,
            max_files_per_batch=settings.max_files_per_batch,
            max_thought_bytes=settings.max_thought_bytes,
        )
        self._clock = clock

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise InvalidInputError("the service clock returned a naive datetime; it must be UTC")
        return now.astimezone(timezone.utc)

    # -- users ----------------------------------------------------------------------------------

    async def create_user(self, wallet_address: str, **fields: Any) -> UserRecord:
        """Create a user (optional: ``username``, ``id``, ``current_plan``, ``status``).

        Raises:
            ConflictError: the id or the wallet address is taken.
        """
        data = parse(UserCreate, wallet_address=wallet_address, **fields)
        async with self.db.transaction() as session:
            user = await UserRepository(session).add(data, self._now())
            return UserRecord.model_validate(user)

    async def get_user(self, user_id: str) -> UserRecord | None:
        """The user with `user_id`, or None."""
        ref = parse(UserRef, user_id=user_id)
        async with self.db.transaction() as session:
            user = await UserRepository(session).get(ref.user_id)
            return None if user is None else UserRecord.model_validate(user)

    async def get_user_by_wallet(self, wallet_address: str) -> UserRecord | None:
        """The user owning `wallet_address`, or None."""
        ref = parse(WalletRef, wallet_address=wallet_address)
        async with self.db.transaction() as session:
            user = await UserRepository(session).get_by_wallet(ref.wallet_address)
            return None if user is None else UserRecord.model_validate(user)

    # -- projects -------------------------------------------------------------------------------

    async def create_project(
        self, user_id: str, name: str, type: Any, **fields: Any
    ) -> ProjectRecord:
        """Create a project (optional: ``description``, ``metadata``, ``id``).

        Raises:
            UnknownUserError: no user has `user_id`.
            ConflictError: the id is taken.
        """
        data = parse(ProjectCreate, user_id=user_id, name=name, type=type, **fields)
        async with self.db.transaction() as session:
            project = await ProjectRepository(session).add(data, self._now())
            return ProjectRecord.model_validate(project)

    async def get_project(self, project_id: str) -> ProjectRecord | None:
        """The project with `project_id`, or None."""
        ref = parse(ProjectRef, project_id=project_id)
        async with self.db.transaction() as session:
            project = await ProjectRepository(session).get(ref.project_id)
            return None if project is None else ProjectRecord.model_validate(project)

    async def list_user_projects(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ProjectRecord]:
        """A page of a user's projects, newest first (keyset pagination, stable)."""
        query = parse(ProjectPageQuery, user_id=user_id, limit=limit, cursor=cursor)
        after = None if query.cursor is None else _time_key(query.cursor, "projects")
        async with self.db.transaction() as session:
            rows = await ProjectRepository(session).list_for_user(
                query.user_id, query.limit + 1, after
            )
            items = [ProjectRecord.model_validate(p) for p in rows]
        return _page(items, query.limit, "projects", lambda p: [p.created_at.isoformat(), p.id])

    async def update_project_status(self, project_id: str, status: Any) -> ProjectRecord | None:
        """Set a project's status (ENDED stamps ``ended_at``); None if there is no project."""
        change = parse(ProjectStatusChange, project_id=project_id, status=status)
        async with self.db.transaction() as session:
            project = await ProjectRepository(session).set_status(
                change.project_id, change.status, self._now()
            )
            return None if project is None else ProjectRecord.model_validate(project)

    async def update_sandbox_state(
        self, project_id: str, state: Any, *, sandbox_id: str | None = None
    ) -> ProjectRecord | None:
        """Set a project's sandbox state (KILLED/NONE clear the sandbox id); None if no project."""
        change = parse(SandboxChange, project_id=project_id, state=state, sandbox_id=sandbox_id)
        async with self.db.transaction() as session:
            project = await ProjectRepository(session).set_sandbox(
                change.project_id, change.state, change.sandbox_id, self._now()
            )
            return None if project is None else ProjectRecord.model_validate(project)

    async def touch_project(self, project_id: str) -> ProjectRecord | None:
        """Set a project's ``last_active`` to now; None if there is no project."""
        ref = parse(ProjectRef, project_id=project_id)
        async with self.db.transaction() as session:
            project = await ProjectRepository(session).touch(ref.project_id, self._now())
            return None if project is None else ProjectRecord.model_validate(project)

    # -- units of work on a project ---------------------------------------------------------------

    @asynccontextmanager
    async def _unit(self, project_id: str, owner: str | None) -> AsyncIterator[AsyncSession]:
        """One transaction on `project_id`; with `owner`, only if that user owns the project."""
        user_id = None if owner is None else parse(UserRef, user_id=owner).user_id
        async with self.db.transaction() as session:
            if user_id is not None and not await ProjectRepository(session).is_owned_by(
                project_id, user_id
            ):
                raise ProjectAccessError(
                    f"project {project_id!r} does not exist or does not belong to user {user_id!r}"
                )
            yield session

    async def check_owner(self, project_id: str, owner: str) -> None:
        """Check that the project `project_id` belongs to the user `owner`.

        Raises:
            ProjectAccessError: it does not exist, or another user owns it.
        """
        ref = parse(ProjectRef, project_id=project_id)
        async with self._unit(ref.project_id, owner):
            pass

    # -- files ----------------------------------------------------------------------------------

    def _checked(self, write: FileWrite) -> FileRow:
        size = _utf8_size(write.content, f"the content of {write.path!r}")
        if size > self.limits.max_file_bytes:
            raise ContentTooLargeError(f"file {write.path!r}", size, self.limits.max_file_bytes)
        return FileRow(write.path, write.content, size, write.encoding)

    async def save_file(
        self,
        project_id: str,
        path: str,
        content: str,
        *,
        encoding: str = "utf-8",
        owner: str | None = None,
    ) -> FileRecord:
        """Create or replace the file at `path`: one statement, one transaction.

        Also touches the project's ``last_active``; saving over a soft-deleted file revives it.
        A binary file is saved as base64 text with ``encoding="base64"``.

        Raises:
            InvalidPathError: `path` is not a normalised relative path.
            ContentTooLargeError: `content` is over the limit.
            UnknownProjectError: no project has `project_id` (`ProjectAccessError`: not
                `owner`'s).
        """
        ref = parse(ProjectRef, project_id=project_id)
        write = self._checked(parse(FileWrite, path=path, content=content, encoding=encoding))
        async with self._unit(ref.project_id, owner) as session:
            (saved,) = await FileRepository(session).upsert(ref.project_id, [write], self._now())
            return FileRecord.model_validate(saved)

    async def save_files(
        self, project_id: str, files: Iterable[FileInput], *, owner: str | None = None
    ) -> list[FileRecord]:
        """Create or replace many files in ONE statement: all of them or none.

        `files` are `FileWrite`s, ``{"path": ..., "content": ...}`` mappings or
        ``(path, content)`` pairs. Paths that normalise to the same file keep the last content,
        as saving them one by one would. Everything is validated before anything is sent.

        Raises:
            InvalidInputError: a file is invalid, or there are more than the batch limit.
            UnknownProjectError: no project has `project_id`.
        """
        ref = parse(ProjectRef, project_id=project_id)
        writes: dict[str, FileRow] = {}
        for item in files:
            if isinstance(item, FileWrite):
                write = item
            elif isinstance(item, tuple) and len(item) == 2:
                write = parse(FileWrite, path=item[0], content=item[1])
            elif isinstance(item, Mapping):
                write = parse(FileWrite, **item)
            else:
                raise InvalidInputError(
                    "files must be FileWrite objects, {'path', 'content'} mappings or "
                    f"(path, content) pairs, not {type(item).__name__}"
                )
            writes[write.path] = self._checked(write)
            if len(writes) > self.limits.max_files_per_batch:
                raise InvalidInputError(
                    f"more than {self.limits.max_files_per_batch} files in one batch"
                )
        if not writes:
            return []
        async with self._unit(ref.project_id, owner) as session:
            saved = await FileRepository(session).upsert(
                ref.project_id, list(writes.values()), self._now()
            )
            return [FileRecord.model_validate(f) for f in saved]

    async def get_file(
        self,
        project_id: str,
        path: str,
        *,
        include_deleted: bool = False,
        owner: str | None = None,
    ) -> FileRecord | None:
        """The file at `path` with its content, or None (soft-deleted ones only on request)."""
        ref = parse(FileRef, project_id=project_id, path=path)
        async with self._unit(ref.project_id, owner) as session:
            found = await FileRepository(session).get(
                ref.project_id, ref.path, include_deleted=include_deleted
            )
            return None if found is None else FileRecord.model_validate(found)

    async def list_files(
        self,
        project_id: str,
        *,
        prefix: str | None = None,
        include_deleted: bool = False,
        limit: int = 100,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> Page[FileInfo]:
        """A page of a project's files (no content) in path order, optionally under `prefix`."""
        query = parse(
            FileQuery,
            project_id=project_id,
            prefix=prefix,
            include_deleted=include_deleted,
            limit=limit,
            cursor=cursor,
        )
        after = None if query.cursor is None else decode_cursor("files", query.cursor, 1)[0]
        async with self._unit(query.project_id, owner) as session:
            rows = await FileRepository(session).page(
                query.project_id,
                query.limit + 1,
                after=after,
                prefix=query.prefix,
                include_deleted=query.include_deleted,
            )
        items = [FileInfo.model_validate(row) for row in rows]
        return _page(items, query.limit, "files", lambda f: [f.path])

    async def edit_file(
        self,
        project_id: str,
        path: str,
        old_text: str,
        new_text: str,
        *,
        replace_all: bool = False,
        owner: str | None = None,
    ) -> EditedFile | None:
        """Replace `old_text` with `new_text` in the file at `path`: exact text, one transaction.

        The file's row stays locked from the read to the write, so concurrent edits never lose
        each other's changes. Without `replace_all`, `old_text` must occur exactly once.
        Returns None if there is no live file at `path`; a failed edit changes nothing.

        Raises:
            TextNotFoundError: `old_text` does not occur in the file.
            AmbiguousEditError: it occurs more than once and `replace_all` is false.
            EditError: `old_text` is empty, or equal to `new_text`, or the file is binary.
            ContentTooLargeError: the edited file would be over the limit.
        """
        edit = parse(
            FileEdit,
            project_id=project_id,
            path=path,
            old_text=old_text,
            new_text=new_text,
            replace_all=replace_all,
        )
        async with self._unit(edit.project_id, owner) as session:
            files = FileRepository(session)
            current = await files.get(edit.project_id, edit.path, for_update=True)
            if current is None:
                return None
            if current.encoding != "utf-8":
                raise EditError(f"{edit.path!r} is a binary file: text edits cannot change it")
            content, occurrences = _replace_exact(current.content, edit)
            write = self._checked(parse(FileWrite, path=edit.path, content=content))
            (saved,) = await files.upsert(edit.project_id, [write], self._now())
            record = FileRecord.model_validate(saved)
            return EditedFile(**record.model_dump(), occurrences=occurrences)

    async def delete_file(
        self, project_id: str, path: str, *, owner: str | None = None
    ) -> FileInfo | None:
        """Soft-delete the file at `path` (restorable); None if no live file is there."""
        ref = parse(FileRef, project_id=project_id, path=path)
        async with self._unit(ref.project_id, owner) as session:
            found = await FileRepository(session).soft_delete(ref.project_id, ref.path, self._now())
            return None if found is None else FileInfo.model_validate(found)

    async def restore_file(
        self, project_id: str, path: str, *, owner: str | None = None
    ) -> FileRecord | None:
        """Undo `delete_file`; None if no soft-deleted file is at `path`."""
        ref = parse(FileRef, project_id=project_id, path=path)
        async with self._unit(ref.project_id, owner) as session:
            found = await FileRepository(session).restore(ref.project_id, ref.path, self._now())
            return None if found is None else FileRecord.model_validate(found)

    async def purge_file(
        self, project_id: str, path: str, *, owner: str | None = None
    ) -> FileInfo | None:
        """Delete the file at `path` for good, deleted or not; None if there is none."""
        ref = parse(FileRef, project_id=project_id, path=path)
        async with self._unit(ref.project_id, owner) as session:
            found = await FileRepository(session).purge(ref.project_id, ref.path)
            return None if found is None else FileInfo.model_validate(found)

    async def purge_deleted_files(
        self, project_id: str, *, older_than: timedelta, owner: str | None = None
    ) -> int:
        """Delete for good the files soft-deleted more than `older_than` ago; return how many."""
        ref = parse(ProjectRef, project_id=project_id)
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidInputError("older_than must be a non-negative timedelta")
        _check_age(older_than)
        async with self._unit(ref.project_id, owner) as session:
            return await FileRepository(session).purge_deleted(
                ref.project_id, self._now() - older_than
            )

    # -- searching and reading in the database (the deepagents backend's face) ------------------

    async def get_files(
        self, project_id: str, paths: Iterable[str], *, owner: str | None = None
    ) -> dict[str, FileRecord]:
        """The live files among `paths` (normalised), by path, read in one statement."""
        ref = parse(ProjectRef, project_id=project_id)
        wanted = sorted({normalize_path(p) for p in paths})
        if len(wanted) > self.limits.max_files_per_batch:
            raise InvalidInputError(f"more than {self.limits.max_files_per_batch} files at once")
        async with self._unit(ref.project_id, owner) as session:
            rows = await FileRepository(session).get_many(ref.project_id, wanted)
            return {row.path: FileRecord.model_validate(row) for row in rows}

    async def read_lines(
        self,
        project_id: str,
        path: str,
        *,
        offset: int = 0,
        limit: int = 2000,
        owner: str | None = None,
    ) -> FileWindow | None:
        """`limit` lines of the file at `path` from the 0-based line `offset`; None if no file.

        The lines are cut in PostgreSQL, so a window of a large file ships only that window.
        A binary or blank file comes back whole. An offset past the end gives an empty window
        (``start_line`` None) with the file's ``total_lines``.
        """
        ref = parse(FileRef, project_id=project_id, path=path)
        first = _count(offset, "offset", highest=2**31 - 2) + 1
        last = first + _count(limit, "limit", lowest=1, highest=2**31 - 1 - first) - 1
        async with self._unit(ref.project_id, owner) as session:
            row = await FileRepository(session).window(ref.project_id, ref.path, first, last)
        if row is None:
            return None
        common = {
            "path": ref.path,
            "encoding": row.encoding,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "total_lines": row.total_lines,
        }
        if row.whole is not None:
            return FileWindow(text=row.whole, start_line=None, end_line=None, **common)
        if first > row.total_lines:
            return FileWindow(text="", start_line=None, end_line=None, past_end=True, **common)
        end = min(last, row.total_lines)
        text = row.window + ("\n" if last < row.pieces else "")
        return FileWindow(text=text, start_line=first, end_line=end, **common)

    async def grep_files(
        self,
        project_id: str,
        pattern: str,
        *,
        root: str = "",
        glob: str | None = None,
        ignore_case: bool = False,
        max_count: int | None = None,
        context_lines: int = 0,
        owner: str | None = None,
    ) -> GrepHits:
        """The lines of live text files holding `pattern` literally, in path and line order.

        Searched in PostgreSQL through the trigram index on content: no file travels to Python.
        `root` narrows the search to a file or directory, `glob` to the paths it matches
        (`app_data.globs`); `max_count` caps the matches (``truncated`` says more exist);
        `context_lines` adds up to that many lines around each match (``context``).
        """
        ref = parse(ProjectRef, project_id=project_id)
        if not isinstance(pattern, str) or "\x00" in pattern:
            raise InvalidInputError("the pattern must be a string without NUL bytes")
        _utf8_size(pattern, "the pattern")
        top = _root(root)
        regex = None if glob is None else glob_regex(glob)
        likes = () if glob is None else glob_likes(glob)
        cap = None if max_count is None else _count(max_count, "max_count")
        around = _count(context_lines, "context_lines", highest=1000)
        async with self._unit(ref.project_id, owner) as session:
            files = FileRepository(session)
            rows = await files.grep(
                ref.project_id,
                pattern,
                root=top,
                path_regex=regex,
                ignore_case=ignore_case is True,
                limit=None if cap is None else cap + 1,
                path_likes=likes,
            )
            truncated = cap is not None and len(rows) > cap
            matches = [GrepLine(path=p, line=n, text=t) for p, n, t in rows[:cap]]
            wanted = sorted(
                {
                    (m.path, n)
                    for m in matches
                    for n in range(max(1, m.line - around), m.line + around + 1)
                    if n != m.line
                }
            )
            context = await files.lines(ref.project_id, wanted) if around else []
        return GrepHits(
            matches=matches,
            truncated=truncated,
            context=[GrepLine(path=p, line=n, text=t) for p, n, t in context],
        )

    async def find_files(
        self, project_id: str, pattern: str, *, root: str = "", owner: str | None = None
    ) -> list[FileInfo]:
        """The live files under `root` whose path matches the glob `pattern`, in path order."""
        ref = parse(ProjectRef, project_id=project_id)
        if not isinstance(pattern, str):
            raise InvalidInputError("the glob pattern must be a string")
        top, regex = _root(root), glob_regex(pattern)
        async with self._unit(ref.project_id, owner) as session:
            rows = await FileRepository(session).find(
                ref.project_id, root=top, path_regex=regex, path_likes=glob_likes(pattern)
            )
        return [
            FileInfo(
                project_id=ref.project_id,
                path=row.path,
                size_bytes=row.size_bytes,
                encoding=row.encoding,
                created_at=row.created_at,
                updated_at=row.updated_at,
                deleted_at=None,
            )
            for row in rows
        ]

    async def list_directory(
        self, project_id: str, directory: str = "", *, owner: str | None = None
    ) -> list[DirectoryEntry]:
        """The files and subdirectories directly inside `directory` (``""``: the project root).

        Directories exist only as prefixes of file paths; an empty or unknown one lists nothing.
        """
        ref = parse(ProjectRef, project_id=project_id)
        top = _root(directory)
        async with self._unit(ref.project_id, owner) as session:
            rows = await FileRepository(session).directory(ref.project_id, top)
        base = top + "/" if top else ""
        return [
            DirectoryEntry(
                path=base + name,
                is_dir=is_dir,
                size_bytes=0 if is_dir else size,
                updated_at=None if is_dir else updated,
            )
            for name, is_dir, size, updated in rows
        ]

    async def delete_tree(self, project_id: str, path: str, *, owner: str | None = None) -> int:
        """Soft-delete the file at `path` and every file under ``path/``; return how many."""
        ref = parse(FileRef, project_id=project_id, path=path)
        async with self._unit(ref.project_id, owner) as session:
            return await FileRepository(session).soft_delete_tree(
                ref.project_id, ref.path, self._now()
            )

    # -- thoughts -------------------------------------------------------------------------------

    async def save_thought(
        self,
        project_id: str,
        kind: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
        owner: str | None = None,
    ) -> ThoughtRecord:
        """Record a thought (and touch the project's ``last_active``) in one statement.

        Raises:
            InvalidInputError / ContentTooLargeError: bad kind, content or metadata.
            UnknownProjectError: no project has `project_id` (`ProjectAccessError`: not
                `owner`'s).
        """
        data = parse(
            ThoughtCreate,
            project_id=project_id,
            kind=kind,
            content=content,
            metadata=None if metadata is None else dict(metadata),
            thread_id=thread_id,
        )
        size = _utf8_size(data.content, "the thought")
        if size > self.limits.max_thought_bytes:
            raise ContentTooLargeError("the thought", size, self.limits.max_thought_bytes)
        async with self._unit(data.project_id, owner) as session:
            thought = await ThoughtRepository(session).add(data, self._now())
            return ThoughtRecord.model_validate(thought)

    async def list_thoughts(
        self,
        project_id: str,
        *,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> Page[ThoughtRecord]:
        """A page of a project's thoughts (of `kind`), newest first (keyset pagination)."""
        query = parse(ThoughtQuery, project_id=project_id, kind=kind, limit=limit, cursor=cursor)
        before = None if query.cursor is None else _time_key(query.cursor, "thoughts")
        async with self._unit(query.project_id, owner) as session:
            rows = await ThoughtRepository(session).recent(
                query.project_id, query.limit + 1, kind=query.kind, before=before
            )
            items = [ThoughtRecord.model_validate(t) for t in rows]
        return _page(items, query.limit, "thoughts", lambda t: [t.created_at.isoformat(), t.id])

    async def search_thoughts(
        self,
        project_id: str,
        query: str,
        *,
        kind: str | None = None,
        language: str | None = None,
        limit: int = 10,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> Page[ThoughtRecord]:
        """A page of the project's thoughts matching `query`, best match first (full text).

        `query` is read like a web search (words, ``"a phrase"``, ``-not``, ``or``); the
        language is `language` or the settings' ``thoughts_language`` (``english``, which the
        migration indexes). Pages are ranked, so a cursor is an offset into the ranking.
        """
        search = parse(ThoughtQuery, project_id=project_id, kind=kind, limit=limit, cursor=cursor)
        if not isinstance(query, str) or not query.strip() or "\x00" in query:
            raise InvalidInputError("query must be some words to search for (no NUL bytes)")
        _utf8_size(query, "the query")
        config = language or self.db.settings.thoughts_language
        if not isinstance(config, str) or not _LANGUAGE.fullmatch(config):
            raise InvalidInputError(f"language {config!r} is not a text-search configuration name")
        offset = 0
        if search.cursor is not None:
            (start,) = decode_cursor("thought_search", search.cursor, 1)
            if not start.isdigit() or len(start) > 9:
                raise InvalidCursorError("the pagination cursor is malformed")
            offset = int(start)
        async with self._unit(search.project_id, owner) as session:
            rows = await ThoughtRepository(session).search(
                search.project_id,
                query,
                language=config,
                kind=search.kind,
                limit=search.limit + 1,
                offset=offset,
            )
            items = [ThoughtRecord.model_validate(t) for t in rows]
        if len(items) <= search.limit:
            return Page[ThoughtRecord](items=items, next_cursor=None)
        following = encode_cursor("thought_search", [str(offset + search.limit)])
        return Page[ThoughtRecord](items=items[: search.limit], next_cursor=following)

    async def keep_latest_thoughts(
        self, project_id: str, keep: int, *, kind: str | None = None, owner: str | None = None
    ) -> int:
        """Delete all but the `keep` newest thoughts (of `kind`); return how many were deleted."""
        rule = parse(ThoughtRetention, project_id=project_id, kind=kind, keep=keep)
        if rule.keep is None:
            raise InvalidInputError("keep must be a non-negative int")
        async with self._unit(rule.project_id, owner) as session:
            return await ThoughtRepository(session).keep_latest(
                rule.project_id, rule.keep, kind=rule.kind
            )

    async def delete_thoughts_older_than(
        self,
        project_id: str,
        older_than: timedelta | datetime,
        *,
        kind: str | None = None,
        owner: str | None = None,
    ) -> int:
        """Delete thoughts created before `older_than` (an age or an aware instant); count them."""
        if isinstance(older_than, datetime):
            rule = parse(ThoughtRetention, project_id=project_id, kind=kind, cutoff=older_than)
        else:
            rule = parse(ThoughtRetention, project_id=project_id, kind=kind, older_than=older_than)
            if rule.older_than is None or rule.older_than < timedelta(0):
                raise InvalidInputError("older_than must be a non-negative age")
            _check_age(rule.older_than)
        async with self._unit(rule.project_id, owner) as session:
            cutoff = rule.cutoff or (self._now() - (rule.older_than or timedelta(0)))
            return await ThoughtRepository(session).delete_before(
                rule.project_id, cutoff, kind=rule.kind
            )

    # -- agent activity (read-only LangGraph tables) --------------------------------------------

    async def project_threads(self, project_id: str, *, limit: int = 50) -> list[ThreadSummary]:
        """The project's LangGraph threads (runs configured with its ``project_id``)."""
        ref = parse(ProjectRef, project_id=project_id)
        if not isinstance(limit, int) or not 1 <= limit <= 500:
            raise InvalidInputError("limit must be an int from 1 to 500")
        async with self.db.transaction() as session:
            return await AgentThreadRepository(session).threads_for_project(
                ref.project_id, limit=limit
            )

    # -- operations -----------------------------------------------------------------------------

    async def health_check(self, timeout: float | None = None) -> HealthReport:
        """The database's health report (`Database.health_check`)."""
        return await self.db.health_check(timeout)


def _retrying(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    @functools.wraps(method)
    async def unit_of_work(self: AppDataService, *args: Any, **kwargs: Any) -> R:
        return await self.db.run_unit(lambda: method(self, *args, **kwargs), method.__name__)

    return unit_of_work


# The one place service calls meet the product-wide retry policy: each public method is one
# unit of work (one `Database.transaction`), so the whole method is what runs again after a
# transient fault before COMMIT (see `Database.run_unit`). No method calls another, so retries
# never nest. `health_check` reports faults rather than hiding them, so it is left alone.
for _name, _method in list(vars(AppDataService).items()):
    if _name.startswith("_") or _name == "health_check":
        continue
    if inspect.iscoroutinefunction(_method):
        setattr(AppDataService, _name, _retrying(_method))
del _name, _method


def _page(items: list[R], limit: int, listing: str, key: Callable[[R], list[str]]) -> Page[R]:
    if len(items) <= limit:
        return Page[R](items=items, next_cursor=None)
    items = items[:limit]
    return Page[R](items=items, next_cursor=encode_cursor(listing, key(items[-1])))


def _check_age(older_than: timedelta) -> None:
    """Refuse an age reaching back before any instant a timestamp can hold."""
    if older_than > MAX_AGE:
        raise InvalidInputError(
            f"older_than is {older_than.days} days; at most {MAX_AGE_TEXT} is allowed"
        )
