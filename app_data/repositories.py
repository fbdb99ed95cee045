"""Repositories: the statements of each aggregate, run on a session they are given.

A repository never opens, commits or rolls back a transaction: it runs inside the unit of work
`app_data.session.Database.transaction` opened, so several repository calls commit or vanish
together. Inputs are already validated (`app_data.schemas`); timestamps are passed in (one
clock per unit of work). Every write is a single statement:

- saving files (one or a thousand) is one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT
  (project_id, path) DO UPDATE`` whose data-modifying CTE also touches the project's
  ``last_active``; a missing project fails the foreign key, nothing is written;
- soft delete, restore and purge are one ``UPDATE``/``DELETE ... RETURNING`` each;
- thought retention ("keep the latest N", "older than T") is one ``DELETE`` each.

Lists use keyset pagination on a unique, immutable sort key served by an index (files: path;
thoughts and projects: ``(created_at, id)``), so pages are stable while rows are added, and a
page costs the same wherever it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    String,
    Text,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app_data.agent_tables import Checkpoint
from app_data.models import (
    Project,
    ProjectFile,
    ProjectStatus,
    ProjectThought,
    SandboxState,
    User,
    UTCDateTime,
    new_id,
    truncate,
)
from app_data.schemas import ProjectCreate, ThoughtCreate, ThreadSummary, UserCreate

__all__ = [
    "AgentThreadRepository",
    "FileRepository",
    "FileRow",
    "ProjectRepository",
    "ThoughtRepository",
    "UserRepository",
]


class FileRow(NamedTuple):
    """One file to save: validated path and content, its UTF-8 size, and how it is encoded."""

    path: str
    content: str
    size_bytes: int
    encoding: str = "utf-8"


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(prefix: str) -> str:
    return _like_escape(prefix) + "%"


# `FileRepository.directory`: the next live path at or after a point, from the start of the
# directory, then after each entry: past a file by the smallest longer string, past a
# subdirectory by `prefix || name || '0'` (every path below it sorts before that).
_DIRECTORY_WALK = """
WITH RECURSIVE walk (path, size_bytes, updated_at) AS (
    (SELECT f.path, f.size_bytes, f.updated_at FROM "ProjectFile" AS f
     WHERE f.project_id = :project_id AND f.deleted_at IS NULL
       AND f.path >= :prefix {upper}
     ORDER BY f.path LIMIT 1)
    UNION ALL
    SELECT nxt.path, nxt.size_bytes, nxt.updated_at
    FROM walk AS w
    CROSS JOIN LATERAL (
        SELECT f.path, f.size_bytes, f.updated_at FROM "ProjectFile" AS f
        WHERE f.project_id = :project_id AND f.deleted_at IS NULL {upper}
          AND f.path >= CASE
              WHEN strpos(substr(w.path, :n + 1), '/') > 0
              THEN :prefix || split_part(substr(w.path, :n + 1), '/', 1) || '0'
              ELSE w.path || chr(1) END
        ORDER BY f.path LIMIT 1
    ) AS nxt
)
SELECT split_part(substr(w.path, :n + 1), '/', 1) AS name,
       strpos(substr(w.path, :n + 1), '/') > 0 AS is_dir,
       w.size_bytes, w.updated_at
FROM walk AS w
ORDER BY name, is_dir
"""


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class UserRepository(_Repository):
    """Users (``users``)."""

    async def add(self, data: UserCreate, now: datetime) -> User:
        """Insert a user; a taken id or wallet address fails the unique index (ConflictError)."""
        now = truncate(now, 3)  # users keeps milliseconds: return what a read would return
        user = User(
            id=data.id or new_id(),
            wallet_address=data.wallet_address,
            username=data.username,
            current_plan=data.current_plan,
            status=data.status,
            created_at=now,
            updated_at=now,
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def get(self, user_id: str) -> User | None:
        """The user with `user_id`, None if there is none."""
        return await self.session.get(User, user_id)

    async def get_by_wallet(self, wallet_address: str) -> User | None:
        """The user owning `wallet_address`, None if there is none."""
        result = await self.session.execute(
            select(User).where(User.wallet_address == wallet_address)
        )
        return result.scalar_one_or_none()


class ProjectRepository(_Repository):
    """Projects (``"Project"``)."""

    async def add(self, data: ProjectCreate, now: datetime) -> Project:
        """Insert a project; an unknown user fails the foreign key (UnknownUserError)."""
        project = Project(
            id=data.id or new_id(),
            user_id=data.user_id,
            name=data.name,
            type=data.type,
            description=data.description,
            metadata_=data.metadata,
            created_at=now,
            updated_at=now,
            last_active=now,
        )
        self.session.add(project)
        await self.session.flush()
        return project

    async def get(self, project_id: str) -> Project | None:
        """The project with `project_id`, None if there is none."""
        return await self.session.get(Project, project_id)

    async def is_owned_by(self, project_id: str, user_id: str) -> bool:
        """Whether the project `project_id` exists and belongs to `user_id`."""
        found = await self.session.execute(
            select(Project.id).where(Project.id == project_id, Project.user_id == user_id)
        )
        return found.first() is not None

    async def list_for_user(
        self, user_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[Project]:
        """Up to `limit` of a user's projects, newest first, after the key `after`."""
        query = select(Project).where(Project.user_id == user_id)
        if after is not None:
            query = query.where(
                tuple_(Project.created_at, Project.id)
                < tuple_(literal(after[0], UTCDateTime(6)), literal(after[1], String))
            )
        query = query.order_by(Project.created_at.desc(), Project.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def _update(self, project_id: str, **values: Any) -> Project | None:
        result = await self.session.execute(
            update(Project)
            .where(Project.id == project_id)
            .values(**values)
            .returning(Project)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def set_status(
        self, project_id: str, status: ProjectStatus, now: datetime
    ) -> Project | None:
        """Set the status; ENDED stamps `ended_at`, any other status clears it."""
        ended_at = now if status is ProjectStatus.ENDED else None
        return await self._update(project_id, status=status, ended_at=ended_at, updated_at=now)

    async def set_sandbox(
        self, project_id: str, state: SandboxState, sandbox_id: str | None, now: datetime
    ) -> Project | None:
        """Set the sandbox state and the active sandbox id (cleared unless a sandbox exists)."""
        keeps_sandbox = state in (SandboxState.RUNNING, SandboxState.PAUSED)
        values: dict[str, Any] = {"sandbox_state": state, "updated_at": now}
        if sandbox_id is not None or not keeps_sandbox:
            values["active_sandbox_id"] = sandbox_id if keeps_sandbox else None
        return await self._update(project_id, **values)

    async def touch(self, project_id: str, now: datetime) -> Project | None:
        """Set `last_active` to `now`."""
        return await self._update(project_id, last_active=now)


class FileRepository(_Repository):
    """Project files (``"ProjectFile"``); deletion is soft unless `purge` is called."""

    async def upsert(
        self,
        project_id: str,
        files: Sequence[FileRow | tuple[str, str, int]],
        now: datetime,
    ) -> list[ProjectFile]:
        """Save `files` (path, content, size[, encoding]) in ONE statement; touch last_active.

        Paths must be unique in `files`. A file saved over a soft-deleted one revives it.
        """
        if not files:
            return []
        rows = [f if isinstance(f, FileRow) else FileRow(*f) for f in files]  # plain: UTF-8
        insert = _upsert_files(project_id, rows, now)
        result = await self.session.execute(
            insert.returning(ProjectFile).execution_options(populate_existing=True)
        )
        by_path = {row.path: row for row in result.scalars()}
        return [by_path[file.path] for file in rows]

    async def get(
        self,
        project_id: str,
        path: str,
        *,
        include_deleted: bool = False,
        for_update: bool = False,
    ) -> ProjectFile | None:
        """The file at `path`, None if there is none (or it is soft-deleted, by default).

        With `for_update` the row stays locked until the unit of work ends, so a
        read-modify-write (an edit) cannot lose a concurrent change.
        """
        query = select(ProjectFile).where(
            ProjectFile.project_id == project_id, ProjectFile.path == path
        )
        if not include_deleted:
            query = query.where(ProjectFile.deleted_at.is_(None))
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self,
        project_id: str,
        limit: int,
        *,
        after: str | None = None,
        prefix: str | None = None,
        include_deleted: bool = False,
    ) -> list[Any]:
        """Up to `limit` files (without content) in path order, after the path `after`."""
        query = select(
            ProjectFile.project_id,
            ProjectFile.path,
            ProjectFile.size_bytes,
            ProjectFile.created_at,
            ProjectFile.updated_at,
            ProjectFile.deleted_at,
        ).where(ProjectFile.project_id == project_id)
        if prefix:
            query = query.where(ProjectFile.path.like(_like_prefix(prefix), escape="\\"))
        if after is not None:
            query = query.where(ProjectFile.path > after)
        if not include_deleted:
            query = query.where(ProjectFile.deleted_at.is_(None))
        query = query.order_by(ProjectFile.path).limit(limit)
        return list((await self.session.execute(query)).all())

    async def soft_delete(self, project_id: str, path: str, now: datetime) -> ProjectFile | None:
        """Mark the live file at `path` deleted; None if there is no live file there."""
        result = await self.session.execute(
            update(ProjectFile)
            .where(
                ProjectFile.project_id == project_id,
                ProjectFile.path == path,
                ProjectFile.deleted_at.is_(None),
            )
            .values(deleted_at=now)
            .returning(ProjectFile)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def restore(self, project_id: str, path: str, now: datetime) -> ProjectFile | None:
        """Undo a soft delete; None if no deleted file is at `path`."""
        result = await self.session.execute(
            update(ProjectFile)
            .where(
                ProjectFile.project_id == project_id,
                ProjectFile.path == path,
                ProjectFile.deleted_at.is_not(None),
            )
            .values(deleted_at=None, updated_at=now)
            .returning(ProjectFile)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def purge(self, project_id: str, path: str) -> ProjectFile | None:
        """Delete the row at `path` for good (deleted or not); None if there is none."""
        result = await self.session.execute(
            delete(ProjectFile)
            .where(ProjectFile.project_id == project_id, ProjectFile.path == path)
            .returning(ProjectFile)
        )
        return result.scalar_one_or_none()

    async def purge_deleted(self, project_id: str, deleted_before: datetime) -> int:
        """Delete for good the files soft-deleted before `deleted_before`; return how many."""
        result = await self.session.execute(
            delete(ProjectFile)
            .where(
                ProjectFile.project_id == project_id,
                ProjectFile.deleted_at < deleted_before,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    # -- reads and searches done in PostgreSQL (the deepagents backend's grep, glob, ls, read) --

    async def get_many(self, project_id: str, paths: Sequence[str]) -> list[ProjectFile]:
        """The live files among `paths`, in one statement."""
        query = select(ProjectFile).where(
            ProjectFile.project_id == project_id,
            ProjectFile.path.in_(list(paths)),
            ProjectFile.deleted_at.is_(None),
        )
        return list((await self.session.execute(query)).scalars())

    async def window(self, project_id: str, path: str, first: int, last: int) -> Any:
        """Lines `first`..`last` (1-based) of a live file, cut in the database; None if none.

        The row carries the file's metadata, ``total_lines`` (``\n``-terminated lines),
        ``pieces`` (the count of ``\n``-separated pieces, one more than the newlines),
        ``window`` (the lines joined by ``\n``) and ``whole`` (the content, only for a binary
        or blank file, which is returned whole).
        """
        split = (
            select(func.string_to_array(ProjectFile.content, "\n").label("parts"))
            .correlate(ProjectFile)
            .lateral("s")
        )
        parts = type_coerce(split.c.parts, ARRAY(Text))
        pieces = func.cardinality(parts)
        whole = or_(
            ProjectFile.encoding != "utf-8",
            func.btrim(ProjectFile.content, " \t\n\r\x0b\x0c") == "",
        )
        query = (
            select(
                ProjectFile.encoding,
                ProjectFile.size_bytes,
                ProjectFile.created_at,
                ProjectFile.updated_at,
                case((whole, ProjectFile.content)).label("whole"),
                pieces.label("pieces"),
                (pieces - cast(parts[pieces] == "", Integer)).label("total_lines"),
                func.array_to_string(parts[first:last], "\n").label("window"),
            )
            .select_from(ProjectFile)
            .join(split, true())
            .where(
                ProjectFile.project_id == project_id,
                ProjectFile.path == path,
                ProjectFile.deleted_at.is_(None),
            )
        )
        return (await self.session.execute(query)).one_or_none()

    async def grep(
        self,
        project_id: str,
        pattern: str,
        *,
        root: str,
        path_regex: str | None,
        ignore_case: bool,
        limit: int | None,
        path_likes: Sequence[str] = (),
    ) -> list[Any]:
        """``(path, line, text)`` of the lines holding `pattern` literally (`grep_statement`)."""
        query = grep_statement(
            project_id,
            pattern,
            root=root,
            path_regex=path_regex,
            ignore_case=ignore_case,
            limit=limit,
            path_likes=path_likes,
        )
        return list((await self.session.execute(query)).all())

    async def lines(self, project_id: str, wanted: Sequence[tuple[str, int]]) -> list[Any]:
        """``(path, line, text)`` of the `wanted` lines of live files (grep's context)."""
        if not wanted:
            return []
        asked = (
            func.unnest(
                cast([p for p, _ in wanted], ARRAY(Text)),
                cast([n for _, n in wanted], ARRAY(Integer)),
            )
            .table_valued("path", "line")
            .render_derived(name="w")
        )
        # A line past the end is '' (split_part), so the file's line count bounds the ask.
        breaks = func.length(ProjectFile.content) - func.length(
            func.replace(ProjectFile.content, "\n", "")
        )
        text_of = func.split_part(ProjectFile.content, "\n", asked.c.line)
        query = (
            select(asked.c.path, asked.c.line, text_of.label("text"))
            .select_from(asked)
            .join(
                ProjectFile,
                (ProjectFile.path == asked.c.path) & (ProjectFile.project_id == project_id),
            )
            .where(ProjectFile.deleted_at.is_(None), asked.c.line <= breaks + 1)
        )
        return list((await self.session.execute(query)).all())

    async def find(
        self,
        project_id: str,
        *,
        root: str,
        path_regex: str | None,
        path_likes: Sequence[str] = (),
    ) -> list[Any]:
        """Live files (no content) under `root` whose relative path matches, in path order."""
        query = (
            select(
                ProjectFile.path,
                ProjectFile.size_bytes,
                ProjectFile.encoding,
                ProjectFile.created_at,
                ProjectFile.updated_at,
            )
            .where(*_live_under(project_id, root, path_regex, path_likes))
            .order_by(ProjectFile.path)
        )
        return list((await self.session.execute(query)).all())

    async def directory(self, project_id: str, directory: str) -> list[Any]:
        """The entries directly in `directory` (``""``: the root): files and subdirectories.

        Each row is ``(name, is_dir, size_bytes, updated_at)`` (a directory's size and time
        are its first file's, which the service drops); a directory is any first segment that
        more paths continue under. A loose index scan (`_DIRECTORY_WALK`): one probe of the
        path index per entry, each subdirectory skipped whole, so a folder of 100 subfolders
        costs 100 probes however many files lie below them.
        """
        prefix = directory + "/" if directory else ""
        # Paths are COLLATE "C" (byte order), and '0' is the byte after '/': every path under
        # `prefix` sorts below `upper`.
        bounded = _DIRECTORY_WALK.format(upper="AND f.path < :upper" if prefix else "")
        params = {"project_id": project_id, "prefix": prefix, "n": len(prefix)}
        if prefix:
            params["upper"] = prefix[:-1] + "0"
        result = await self.session.execute(text(bounded), params)
        return list(result.all())

    async def soft_delete_tree(self, project_id: str, path: str, now: datetime) -> int:
        """Soft-delete the live file at `path` and every live file under ``path/``; count them."""
        result = await self.session.execute(
            update(ProjectFile)
            .where(*_live_under(project_id, path, None))
            .values(deleted_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


def _live_under(
    project_id: str, root: str, path_regex: str | None, path_likes: Sequence[str] = ()
) -> list[Any]:
    """Live files of the project at or under `root`, whose path relative to it matches.

    `path_likes` (any of them) is checked before `path_regex`: a cheap filter that lets the
    regular expression run on few paths.
    """
    where: list[Any] = [ProjectFile.project_id == project_id, ProjectFile.deleted_at.is_(None)]
    relative: Any = ProjectFile.path
    if root:
        where.append(
            or_(
                ProjectFile.path == root,
                ProjectFile.path.like(_like_prefix(root + "/"), escape="\\"),
            )
        )
        relative = func.substr(ProjectFile.path, len(root) + 2)
        # A root naming a file is matched by the file's name, as the harness does.
        relative = func.coalesce(
            func.nullif(relative, ""), func.regexp_replace(ProjectFile.path, "^.*/", "")
        )
    if path_likes:
        where.append(or_(*(relative.like(like, escape="\\") for like in path_likes)))
    if path_regex is not None:
        where.append(relative.regexp_match(path_regex))
    return where


def grep_statement(
    project_id: str,
    pattern: str,
    *,
    root: str,
    path_regex: str | None,
    ignore_case: bool,
    limit: int | None,
    path_likes: Sequence[str] = (),
) -> Any:
    """The SELECT of `FileRepository.grep`: matching lines, in path and line order.

    The content filter is ``LIKE '%pattern%'`` (``ILIKE`` when ignoring case), which the
    trigram index serves; only the files it lets through are split into lines, and a line
    matches on ``strpos`` (a literal, like the filter). Public for the benchmark's EXPLAIN.
    """
    like = "%" + _like_escape(pattern) + "%"
    lines = (
        func.unnest(func.string_to_array(ProjectFile.content, "\n"))
        .table_valued("text", with_ordinality="line")
        .render_derived(name="l")
        .lateral()
    )
    if ignore_case:
        holds = ProjectFile.content.ilike(like, escape="\\")
        hit = func.strpos(func.lower(lines.c.text), func.lower(pattern)) > 0
    else:
        holds = ProjectFile.content.like(like, escape="\\")
        hit = func.strpos(lines.c.text, pattern) > 0
    query = (
        select(ProjectFile.path, lines.c.line, lines.c.text)
        .select_from(ProjectFile)
        .join(lines, true())
        .where(*_live_under(project_id, root, path_regex, path_likes), holds, hit)
        .order_by(ProjectFile.path, lines.c.line)
    )
    return query if limit is None else query.limit(limit)


class ThoughtRepository(_Repository):
    """Project thoughts (``"ProjectThought"``)."""

    async def add(self, data: ThoughtCreate, now: datetime) -> ProjectThought:
        """Insert a thought and touch the project's last_active, in one statement."""
        touched = (
            update(Project)
            .where(Project.id == data.project_id)
            .values(last_active=now)
            .returning(Project.id)
            .cte("touched")
        )
        result = await self.session.execute(
            pg_insert(ProjectThought)
            .values(
                id=new_id(),
                project_id=data.project_id,
                kind=data.kind,
                content=data.content,
                metadata_=data.metadata,
                thread_id=data.thread_id,
                created_at=now,
            )
            .add_cte(touched)
            .returning(ProjectThought)
        )
        return result.scalar_one()

    def _scope(self, project_id: str, kind: str | None) -> list[Any]:
        conditions: list[Any] = [ProjectThought.project_id == project_id]
        if kind is not None:
            conditions.append(ProjectThought.kind == kind)
        return conditions

    async def recent(
        self,
        project_id: str,
        limit: int,
        *,
        kind: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[ProjectThought]:
        """Up to `limit` thoughts, newest first, older than the key `before`."""
        query = select(ProjectThought).where(*self._scope(project_id, kind))
        if before is not None:
            query = query.where(
                tuple_(ProjectThought.created_at, ProjectThought.id)
                < tuple_(literal(before[0], UTCDateTime(6)), literal(before[1], String))
            )
        query = query.order_by(ProjectThought.created_at.desc(), ProjectThought.id.desc())
        return list((await self.session.execute(query.limit(limit))).scalars())

    async def search(
        self,
        project_id: str,
        query: str,
        *,
        language: str,
        kind: str | None,
        limit: int,
        offset: int,
    ) -> list[ProjectThought]:
        """Thoughts matching `query` (web-search syntax), best first: ``ts_rank_cd``, then newest.

        `language` must be a validated configuration name: it is written into the statement as
        a constant so that the expression is the one ``ProjectThought_content_fts_idx`` indexes.
        """
        config: Any = literal_column(f"'{language}'::regconfig")
        document = func.to_tsvector(config, ProjectThought.content)
        wanted = func.websearch_to_tsquery(config, query)
        statement = (
            select(ProjectThought)
            .where(*self._scope(project_id, kind), document.op("@@")(wanted))
            .order_by(
                func.ts_rank_cd(document, wanted).desc(),
                ProjectThought.created_at.desc(),
                ProjectThought.id.desc(),
            )
            .offset(offset)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def keep_latest(self, project_id: str, keep: int, *, kind: str | None = None) -> int:
        """Delete all but the `keep` newest thoughts (of `kind`); return how many went."""
        doomed = (
            select(ProjectThought.id)
            .where(*self._scope(project_id, kind))
            .order_by(ProjectThought.created_at.desc(), ProjectThought.id.desc())
            .offset(keep)
        )
        result = await self.session.execute(
            delete(ProjectThought)
            .where(ProjectThought.project_id == project_id, ProjectThought.id.in_(doomed))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_before(
        self, project_id: str, cutoff: datetime, *, kind: str | None = None
    ) -> int:
        """Delete the thoughts (of `kind`) created before `cutoff`; return how many went."""
        result = await self.session.execute(
            delete(ProjectThought)
            .where(*self._scope(project_id, kind), ProjectThought.created_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


class AgentThreadRepository(_Repository):
    """Reports over the LangGraph checkpoint tables (read-only)."""

    async def threads_for_project(
        self, project_id: str, *, limit: int = 50, metadata_key: str = "project_id"
    ) -> list[ThreadSummary]:
        """The threads whose checkpoints carry ``metadata[metadata_key] == project_id``.

        LangGraph copies string values of a run's ``configurable`` into checkpoint metadata, so
        runs configured with ``{"configurable": {"project_id": ...}}`` are found here. The
        containment test is served by the savers' GIN index ``checkpoints_metadata_idx``.
        Newest activity first; only root-namespace checkpoints count (not subgraphs').
        """
        last_activity = func.max(
            Checkpoint.checkpoint["ts"].astext.cast(TIMESTAMP(timezone=True))
        ).label("last_activity")
        query = (
            select(
                Checkpoint.thread_id,
                func.count().label("checkpoints"),
                func.max(Checkpoint.checkpoint_id).label("last_checkpoint_id"),
                last_activity,
            )
            .where(
                Checkpoint.checkpoint_ns == "",
                Checkpoint.metadata_.contains({metadata_key: project_id}),
            )
            .group_by(Checkpoint.thread_id)
            .order_by(last_activity.desc().nulls_last(), Checkpoint.thread_id)
            .limit(limit)
        )
        rows = (await self.session.execute(query)).all()
        return [
            ThreadSummary(
                thread_id=row.thread_id,
                checkpoints=row.checkpoints,
                last_checkpoint_id=row.last_checkpoint_id,
                last_activity=row.last_activity,
            )
            for row in rows
        ]


def _upsert_files(project_id: str, files: Sequence[FileRow], now: datetime) -> PgInsert:
    """The one INSERT ... ON CONFLICT of `FileRepository.upsert`, which also touches the project."""
    rows = (
        func.unnest(
            cast([new_id() for _ in files], ARRAY(Text)),
            cast([f.path for f in files], ARRAY(Text)),
            cast([f.content for f in files], ARRAY(Text)),
            cast([f.size_bytes for f in files], ARRAY(Integer)),
            cast([f.encoding for f in files], ARRAY(Text)),
        )
        .table_valued("id", "path", "content", "size_bytes", "encoding")
        .render_derived(name="f")
    )
    touched = (
        update(Project)
        .where(Project.id == project_id)
        .values(last_active=now)
        .returning(Project.id)
        .cte("touched")
    )
    stamp = literal(now, UTCDateTime(6))
    insert = (
        pg_insert(ProjectFile)
        .from_select(
            [
                "id",
                "project_id",
                "path",
                "content",
                "size_bytes",
                "encoding",
                "created_at",
                "updated_at",
                "deleted_at",
            ],
            select(
                rows.c.id,
                literal(project_id, String),
                rows.c.path,
                rows.c.content,
                rows.c.size_bytes,
                rows.c.encoding,
                stamp,
                stamp,
                null().cast(TIMESTAMP(precision=6)),
            ),
        )
        .add_cte(touched)
    )
    return insert.on_conflict_do_update(
        index_elements=[ProjectFile.project_id, ProjectFile.path],
        set_={
            "content": insert.excluded.content,
            "size_bytes": insert.excluded.size_bytes,
            "encoding": insert.excluded.encoding,
            "updated_at": insert.excluded.updated_at,
            "deleted_at": None,
        },
    )
