"""Hostile input to app_data's service and the agent tools: a typed error (for a tool, an
``Error: ...`` tool message) naming the problem and every table exactly as it was, or the value
stored and read back exactly.

The database holds an owner (``u1``) with project ``p1`` (a file, a thought) and a stranger
(``u2``) with project ``p2`` holding a secret file. Runs of the tools are scoped to ``u1/p1``
by their config. tests/app_data holds the basic path, id and thought refusals this table does
not repeat.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.types import Command
from psycopg import sql

from app_data import AppDataService, Database, ProjectType, migrations
from app_data.errors import (
    ContentTooLargeError,
    InvalidInputError,
    InvalidPathError,
    ProjectAccessError,
    TextNotFoundError,
)
from app_data.tools import ProjectTools, ScriptedChatModel, call, memory_namespace, reply
from app_data.tools.scope import ToolScope
from checkpoint_pg import AsyncPostgresSaver
from checkpoint_pg.cli.demo import build_agent
from store import AsyncPostgresStore
from tests.harness import DatabaseFactory
from tests.support.hostile_cases import SURROGATE, Case, Changes, ids, nested_lists, snapshot

TABLES = ("users", "Project", "ProjectFile", "ProjectThought", "store")
S = SURROGATE
SQL_TEXT = 'x\'); DELETE FROM "ProjectFile"; --'
SECRET = "the stranger's secret"


class ToolError(Exception):
    """A tool answered with an error message (the run goes on; nothing may be written)."""


@dataclass
class Env:
    dsn: str
    service: AppDataService
    tools: ProjectTools
    store: AsyncPostgresStore


async def _seed(dsn: str) -> None:
    await migrations.upgrade(dsn)
    async with (
        Database(dsn, pool_size=1, max_overflow=0) as db,
        AsyncPostgresStore.from_conn_string(dsn) as store,
    ):
        await store.setup()
        service = AppDataService(db)
        await service.create_user("0xowner", id="u1")
        await service.create_project("u1", "mine", ProjectType.GAME, id="p1")
        await service.save_file("p1", "a.txt", "hello\nworld\n")
        await service.save_thought("p1", "note", "seed thought")
        await service.create_user("0xstranger", id="u2")
        await service.create_project("u2", "theirs", ProjectType.GAME, id="p2")
        await service.save_file("p2", "secret.txt", SECRET)
        await store.aput(("memories", "u1"), "seed", {"text": "likes tea"})


@pytest.fixture(scope="module")
def seeded(db_factory: DatabaseFactory) -> Iterator[str]:
    """One migrated, seeded schema for the module, with a copy of every table's rows.

    Migrating a schema takes ~0.5 s; putting the seed rows back takes milliseconds, so each
    case starts from the same rows without a schema of its own.
    """
    with db_factory.schema() as dsn:
        asyncio.run(_seed(dsn))
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in TABLES:
                conn.execute(
                    sql.SQL("CREATE TABLE {} AS TABLE {}").format(
                        sql.Identifier(f"seed_{table}"), sql.Identifier(table)
                    )
                )
        yield dsn


def _restore(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
            )
        )
        for table in TABLES:  # in foreign-key order
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                    sql.Identifier(table), sql.Identifier(f"seed_{table}")
                )
            )


@pytest.fixture
async def env(seeded: str) -> AsyncIterator[Env]:
    _restore(seeded)
    async with (
        Database(seeded, pool_size=1, max_overflow=1) as db,
        AsyncPostgresStore.from_conn_string(seeded) as store,
    ):
        service = AppDataService(db)
        yield Env(seeded, service, ProjectTools(service, store=store), store)


def run_config(user: str = "u1", project: str = "p1", thread: str = "t-1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, "user_id": user, "project_id": project}}


async def tool(env: Env, name: str, args: dict[str, Any], config: Any = None) -> str:
    text = str(await env.tools.by_name(name).ainvoke(args, config or run_config()))
    if text.startswith("Error:"):
        raise ToolError(text)
    return text


def file_rows(path: str, project: str = "p1") -> Changes:
    """The file's row, and its project's row (saving touches ``last_active``)."""
    return {
        "ProjectFile": ("project_id = %s AND path = %s", [project, path]),
        "Project": ("id = %s", [project]),
    }


def thought_rows(project: str = "p1") -> Changes:
    return {
        "ProjectThought": ("project_id = %s AND content <> 'seed thought'", [project]),
        "Project": ("id = %s", [project]),
    }


def refused(surface: str, id: str, run: Any, error: type[BaseException], match: str) -> Case[Env]:
    return Case(id=id, surface=surface, run=run, error=error, match=match)


def saves_file(id: str, path: str, content: str, *, stored_as: str | None = None) -> Case[Env]:
    where = stored_as or path

    async def check(env: Env, _: Any) -> None:
        got = await env.service.get_file("p1", where, owner="u1")
        assert got is not None
        assert (got.path, got.content) == (where, content)

    return Case(
        id=id,
        surface="service",
        run=lambda e: e.service.save_file("p1", path, content, owner="u1"),
        check=check,
        changes=lambda e: file_rows(where),
    )


def saves_thought(id: str, content: str, metadata: dict[str, Any] | None) -> Case[Env]:
    async def check(env: Env, _: Any) -> None:
        page = await env.service.list_thoughts("p1", owner="u1", limit=1)
        (got,) = page.items
        assert (got.content, got.metadata) == (content, metadata)

    return Case(
        id=id,
        surface="service",
        run=lambda e: e.service.save_thought("p1", "note", content, metadata=metadata, owner="u1"),
        check=check,
        changes=lambda e: thought_rows(),
    )


async def unchanged_secret(env: Env) -> None:
    secret = await env.service.get_file("p2", "secret.txt")
    assert secret is not None
    assert secret.content == SECRET


def nothing_found(surface: str, id: str, run: Any, expect: Any) -> Case[Env]:
    async def check(env: Env, result: Any) -> None:
        assert result == expect

    return Case(id=id, surface=surface, run=run, check=check)


async def remembered(env: Env, result: Any) -> None:
    scope = ToolScope(user_id="u1", project_id="p1")
    items = await env.store.asearch(memory_namespace(scope), limit=10)
    (new,) = [item for item in items if item.key != "seed"]
    assert new.value == {"text": "likes coffee", "project_id": "p1", "thread_id": None}


def svc(env: Env) -> AppDataService:
    return env.service


IIE = InvalidInputError
IPE = InvalidPathError
PAE = ProjectAccessError

CASES: list[Case[Env]] = [
    # -- file paths --------------------------------------------------------------------------
    refused(
        "path",
        "surrogate",
        lambda e: svc(e).save_file("p1", "a" + S + ".txt", "x"),
        IPE,
        "not valid Unicode",
    ),
    refused(
        "path",
        "deep-traversal",
        lambda e: svc(e).save_file("p1", "a/b/../../../etc/passwd", "x"),
        IPE,
        "leaves the project",
    ),
    refused(
        "path", "backslash-traversal", lambda e: svc(e).save_file("p1", "..\\x", "x"), IPE, "\\"
    ),
    refused(
        "path",
        "to-the-strangers-project",
        lambda e: svc(e).get_file("p1", "../p2/secret.txt", owner="u1"),
        IPE,
        "leaves the project",
    ),
    refused("path", "int", lambda e: svc(e).save_file("p1", 5, "x"), IIE, "path"),
    refused(
        "path",
        "list-prefix-traversal",
        lambda e: svc(e).list_files("p1", prefix="../", owner="u1"),
        IPE,
        "leaves the project",
    ),
    saves_file("percent-encoded-dots-are-literal", "%2e%2e/x.txt", "x"),
    saves_file("one-dot-leaders-are-not-dots", "\u2024\u2024/x.txt", "x"),
    saves_file("quote-percent-underscore", "it's_100%.txt", "x"),
    saves_file("dot-segments-normalised", "./src//./main.py", "x", stored_as="src/main.py"),
    # -- file content ------------------------------------------------------------------------
    refused("content", "bytes", lambda e: svc(e).save_file("p1", "b.txt", b"x"), IIE, "content"),
    refused(
        "content",
        "50mb",
        lambda e: svc(e).save_file("p1", "big.txt", "x" * (50 * 1024 * 1024)),
        ContentTooLargeError,
        "the limit is 1048576 bytes",
    ),
    refused(
        "content",
        "edit-to-a-surrogate",
        lambda e: svc(e).edit_file("p1", "a.txt", "world", S, owner="u1"),
        IIE,
        "not valid Unicode",
    ),
    refused(
        "content",
        "edit-old-text-wildcard",
        lambda e: svc(e).edit_file("p1", "a.txt", "%", "x", owner="u1"),
        TextNotFoundError,
        "does not occur",
    ),
    refused(
        "content",
        "bulk-with-one-bad-path",
        lambda e: svc(e).save_files("p1", [("ok.txt", "x"), ("a" + S, "y")], owner="u1"),
        IPE,
        "not valid Unicode",
    ),
    saves_file("sql-quotes-backslashes", "sql.txt", SQL_TEXT + "\\'%_\r\n\t"),
    saves_file("unicode", "u.txt", "ключ 値 👩‍👩‍👧 \u200b\u202e"),
    # -- another user's project --------------------------------------------------------------
    refused(
        "foreign",
        "save-file",
        lambda e: svc(e).save_file("p2", "secret.txt", "mine now", owner="u1"),
        PAE,
        "does not exist or does not belong",
    ),
    refused(
        "foreign",
        "get-file",
        lambda e: svc(e).get_file("p2", "secret.txt", owner="u1"),
        PAE,
        "does not belong",
    ),
    refused("foreign", "list-files", lambda e: svc(e).list_files("p2", owner="u1"), PAE, "p2"),
    refused(
        "foreign",
        "delete-file",
        lambda e: svc(e).delete_file("p2", "secret.txt", owner="u1"),
        PAE,
        "does not belong",
    ),
    refused(
        "foreign",
        "purge-file",
        lambda e: svc(e).purge_file("p2", "secret.txt", owner="u1"),
        PAE,
        "does not belong",
    ),
    refused(
        "foreign",
        "edit-file",
        lambda e: svc(e).edit_file("p2", "secret.txt", "secret", "x", owner="u1"),
        PAE,
        "does not belong",
    ),
    refused(
        "foreign",
        "save-thought",
        lambda e: svc(e).save_thought("p2", "note", "x", owner="u1"),
        PAE,
        "does not belong",
    ),
    refused(
        "foreign",
        "owner-injection",
        lambda e: svc(e).get_file("p2", "secret.txt", owner="u2' OR '1'='1"),
        IIE,
        "user_id",
    ),
    refused(
        "foreign",
        "project-id-injection",
        lambda e: svc(e).get_file("p1' OR project_id='p2", "secret.txt", owner="u1"),
        IIE,
        "project_id",
    ),
    refused(
        "foreign",
        "owner-int",
        lambda e: svc(e).get_file("p1", "a.txt", owner=1),
        IIE,
        "user_id",
    ),
    # -- thoughts ----------------------------------------------------------------------------
    refused(
        "thought",
        "content-surrogate",
        lambda e: svc(e).save_thought("p1", "note", "x" + S),
        IIE,
        "not valid Unicode",
    ),
    refused(
        "thought",
        "metadata-surrogate",
        lambda e: svc(e).save_thought("p1", "note", "x", metadata={"k": S}),
        IIE,
        "lone surrogate",
    ),
    refused(
        "thought",
        "metadata-key-surrogate",
        lambda e: svc(e).save_thought("p1", "note", "x", metadata={S: 1}),
        IIE,
        "lone surrogate",
    ),
    refused(
        "thought",
        "metadata-too-deep",
        lambda e: svc(e).save_thought("p1", "note", "x", metadata={"l": nested_lists(2000)}),
        IIE,
        "nested more than 64 levels",
    ),
    refused(
        "thought",
        "metadata-key-nul",
        lambda e: svc(e).save_thought("p1", "note", "x", metadata={"k\x00": 1}),
        IIE,
        "NUL",
    ),
    refused(
        "thought",
        "metadata-int-key",
        lambda e: svc(e).save_thought("p1", "note", "x", metadata={1: "a"}),
        IIE,
        "metadata",
    ),
    refused(
        "thought",
        "kind-sql",
        lambda e: svc(e).save_thought("p1", "note'; DROP TABLE users; --", "x"),
        IIE,
        "kind",
    ),
    refused(
        "thought",
        "thread-id-surrogate",
        lambda e: svc(e).save_thought("p1", "note", "x", thread_id="t" + S),
        IIE,
        "thread_id",
    ),
    saves_thought("thought-sql-metadata-keys", SQL_TEXT, {SQL_TEXT: ["'", "\\", "%"], "$ne": 1}),
    # -- project metadata and wrong types ----------------------------------------------------
    refused(
        "project",
        "metadata-surrogate-key",
        lambda e: svc(e).create_project("u1", "x", ProjectType.GAME, metadata={S: 1}),
        IIE,
        "lone surrogate",
    ),
    refused(
        "project",
        "name-surrogate",
        lambda e: svc(e).create_project("u1", "n" + S, ProjectType.GAME),
        IIE,
        "name",
    ),
    refused(
        "project",
        "for-another-user-id-injection",
        lambda e: svc(e).create_project("u2' --", "x", ProjectType.GAME),
        IIE,
        "user_id",
    ),
    refused("types", "limit-str", lambda e: svc(e).list_files("p1", limit="10"), IIE, "limit"),
    refused(
        "types",
        "replace-all-str",
        lambda e: svc(e).edit_file("p1", "a.txt", "o", "0", replace_all="yes"),
        IIE,
        "replace_all",
    ),
    nothing_found(
        "types",
        "list-prefix-wildcard",
        lambda e: _paths(svc(e).list_files("p1", prefix="%", owner="u1")),
        [],
    ),
    # -- PostgreSQL's limits: refused before the statement, naming the limit ---------------------
    refused(
        "limits",
        "keep-latest-thoughts-over-bigint",
        lambda e: svc(e).keep_latest_thoughts("p1", 2**63, owner="u1"),
        IIE,
        "less than or equal to 9223372036854775807",
    ),
    refused(
        "limits",
        "purge-deleted-files-older-than-huge",
        lambda e: svc(e).purge_deleted_files("p1", older_than=timedelta.max, owner="u1"),
        IIE,
        "at most 1000 years",
    ),
    refused(
        "limits",
        "delete-thoughts-older-than-huge",
        lambda e: svc(e).delete_thoughts_older_than("p1", timedelta(days=10**8), owner="u1"),
        IIE,
        "at most 1000 years",
    ),
    # -- tools -------------------------------------------------------------------------------
    refused(
        "tool",
        "write-traversal",
        lambda e: tool(e, "write_file", {"path": "../p2/secret.txt", "content": "x"}),
        ToolError,
        "leaves the project",
    ),
    refused(
        "tool",
        "write-with-project-argument",
        lambda e: tool(e, "write_file", {"path": "x.txt", "content": "x", "project_id": "p2"}),
        ToolError,
        "project_id is not an argument",
    ),
    refused(
        "tool",
        "run-scoped-to-a-foreign-project",
        lambda e: tool(e, "write_file", {"path": "x.txt", "content": "x"}, run_config("u1", "p2")),
        ToolError,
        "does not belong to user 'u1'",
    ),
    refused(
        "tool",
        "delete-in-a-foreign-project",
        lambda e: tool(e, "delete_file", {"path": "secret.txt"}, run_config("u1", "p2")),
        ToolError,
        "does not belong",
    ),
    refused(
        "tool",
        "write-content-int",
        lambda e: tool(e, "write_file", {"path": "x.txt", "content": 5}),
        ToolError,
        "content: Input should be a valid string",
    ),
    refused(
        "tool",
        "write-path-surrogate",
        lambda e: tool(e, "write_file", {"path": S, "content": "x"}),
        ToolError,
        "not valid Unicode",
    ),
    refused(
        "tool",
        "edit-absent-text",
        lambda e: tool(e, "edit_file", {"path": "a.txt", "old_text": "nope", "new_text": "x"}),
        ToolError,
        "does not occur",
    ),
    refused(
        "tool",
        "thought-nul",
        lambda e: tool(e, "save_thought", {"content": "a\x00b"}),
        ToolError,
        "NUL",
    ),
    refused(
        "tool",
        "thought-kind-sql",
        lambda e: tool(e, "save_thought", {"content": "x", "kind": "x'; --"}),
        ToolError,
        "kind",
    ),
    refused(
        "tool",
        "list-cursor-junk",
        lambda e: tool(e, "list_files", {"cursor": "' OR 1=1 --"}),
        ToolError,
        "cursor is malformed",
    ),
    refused(
        "tool",
        "remember-nul",
        lambda e: tool(e, "remember", {"text": "x\x00"}),
        ToolError,
        "NUL",
    ),
    refused(
        "tool",
        "scope-user-surrogate",
        lambda e: tool(e, "list_files", {}, run_config(user="u" + S)),
        ToolError,
        "user_id",
    ),
    Case(
        id="remember-in-a-run-with-an-unstorable-thread-id",
        surface="tool",
        run=lambda e: tool(e, "remember", {"text": "likes coffee"}, run_config(thread="t" + S)),
        check=remembered,
        changes=lambda e: {"store": ("key <> 'seed'", [])},
    ),
]


async def _paths(page: Any) -> list[str]:
    return [f.path for f in (await page).items]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_hostile_input_to_app_data(env: Env, case: Case[Env]) -> None:
    leave_out = case.changes(env) if case.changes else None
    before = snapshot(env.dsn, TABLES, leave_out)
    if case.error is not None:
        with pytest.raises(case.error) as caught:
            await _settle(case.run(env))
        assert case.match in str(caught.value)
    else:
        result = await _settle(case.run(env))
        if case.check is not None:
            await _settle(case.check(env, result))
    assert snapshot(env.dsn, TABLES, leave_out) == before
    await unchanged_secret(env)


async def _settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def test_every_surface_is_covered() -> None:
    surfaces: Sequence[str] = sorted({c.surface for c in CASES})
    assert surfaces == [
        "content",
        "foreign",
        "limits",
        "path",
        "project",
        "service",
        "thought",
        "tool",
        "types",
    ]


# -- an approval replayed into another scope ----------------------------------------------------


async def _ask_then_resume(env: Env, asked: dict[str, Any], resumed: dict[str, Any]) -> Any:
    """Run an agent whose ``delete_file`` waits for approval under `asked`, then answer yes
    under `resumed` (same thread); return the last tool message."""
    script = [reply("", call("delete_file", path="shared.txt")), "ok"]
    toolkit = ProjectTools(env.service, approval={"delete_file"})
    async with AsyncPostgresSaver.from_conn_string(env.dsn, pool_size=1) as saver:
        await saver.setup()
        graph = build_agent(ScriptedChatModel(script=script), toolkit.tools, checkpointer=saver)
        paused = await graph.ainvoke({"messages": [HumanMessage("go")]}, asked)
        (question,) = paused["__interrupt__"]
        assert question.value["binding"]
        done = await graph.ainvoke(Command(resume=True), resumed)
    return [m for m in done["messages"] if isinstance(m, ToolMessage)][-1]


async def _with_shared_files(env: Env) -> None:
    await env.service.create_project("u1", "second", ProjectType.GAME, id="p3")
    for project in ("p1", "p2", "p3"):
        await env.service.save_file(project, "shared.txt", f"shared of {project}")


@pytest.mark.parametrize(
    "resumer",
    [("u1", "p1"), ("u2", "p2")],
    ids=["same-user-other-project", "other-user-own-project"],
)
async def test_an_approval_is_refused_when_resumed_under_another_scope(
    env: Env, resumer: tuple[str, str]
) -> None:
    await _with_shared_files(env)
    before = snapshot(env.dsn, TABLES)
    thread = f"t-approval-{resumer[0]}"  # checkpoints outlive a case: one thread per case
    asked = run_config("u1", "p3", thread=thread)
    resumed = run_config(*resumer, thread=thread)

    answer = await _ask_then_resume(env, asked, resumed)

    assert answer.status == "error"
    assert "approval of delete_file was given for another user, project" in str(answer.content)
    assert snapshot(env.dsn, TABLES) == before  # every project's shared.txt byte-identical
    await unchanged_secret(env)


async def test_an_approval_resumed_under_its_own_scope_applies(env: Env) -> None:
    await _with_shared_files(env)
    others = {"ProjectFile": ("project_id = 'p3'", []), "Project": ("id = 'p3'", [])}
    before = snapshot(env.dsn, TABLES, others)
    config = run_config("u1", "p3", thread="t-approval-own")

    answer = await _ask_then_resume(env, config, config)

    assert answer.status == "success", answer.content
    assert await env.service.get_file("p3", "shared.txt", owner="u1") is None
    assert snapshot(env.dsn, TABLES, others) == before
