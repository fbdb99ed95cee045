"""The project tools in real LangGraph runs: the right rows, the scope, the error contract.

Each run is a real graph (model node, ToolNode, PostgreSQL checkpointer and store) driven by a
scripted model, blocking (``graph.invoke``) and async (``graph.ainvoke``).
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from app_data import AppDataService, Database
from app_data.tools import (
    SCOPE_KEYS,
    TOOL_NAMES,
    ProjectTools,
    ScriptedChatModel,
    call,
    memory_namespace,
    reply,
    resolve_scope,
)
from app_data.tools.scope import ToolScope
from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg.cli.demo import build_agent
from store import AsyncPostgresStore
from tests.support.agent_world import (
    MODES,
    SECRET,
    World,
    async_graph,
    blocking_graph,
    files,
    final_answer,
    run_agent,
    thoughts,
    tool_results,
)

both = pytest.mark.parametrize("mode", MODES)


def errors_of(messages: list[ToolMessage]) -> list[str]:
    return [str(m.content) for m in messages if m.status == "error"]


# -- schemas ------------------------------------------------------------------------------------


def test_tool_schemas_hold_no_scope_fields() -> None:
    never_connected = Database("host=127.0.0.1 port=1 dbname=none")
    toolkit = ProjectTools(AppDataService(never_connected))
    assert tuple(t.name for t in toolkit.tools) == TOOL_NAMES
    scope_fields = {*SCOPE_KEYS, "thread_id", "owner"}
    for tool in toolkit.tools:
        assert tool.args_schema is not None
        fields = set(tool.args_schema.model_fields)  # type: ignore[union-attr]
        assert not fields & scope_fields, tool.name
        visible = set(tool.tool_call_schema.model_json_schema()["properties"])  # type: ignore[union-attr]
        assert not visible & (scope_fields | {"runtime"}), tool.name
        assert tool.args_schema.model_config.get("extra") == "forbid"  # type: ignore[union-attr]


# -- the right rows -----------------------------------------------------------------------------


@both
async def test_an_agent_reads_and_writes_the_rows_of_its_own_project(
    mode: str, world: World
) -> None:
    script = [
        reply(
            "",
            call("write_file", path="src/app.py", content="x = 1\ny = 2\n"),
            call("write_file", path="./docs//notes.md", content="# notes\n"),
            call("save_thought", kind="plan", content="write app.py, then edit it"),
        ),
        reply("", call("edit_file", path="src/app.py", old_text="y = 2", new_text="y = 3")),
        reply(
            "",
            call("read_file", path="src/app.py"),
            call("list_files"),
            call("recall_thoughts", kind="plan"),
        ),
        reply("", call("delete_file", path="docs/notes.md")),
        "done",
    ]
    messages = await run_agent(mode, world, script, config=world.config("t-rows"))

    results = tool_results(messages)
    assert errors_of(results) == []
    by_name = {m.name: str(m.content) for m in results}
    assert "x = 1\ny = 3" in by_name["read_file"]
    assert "src/app.py" in by_name["list_files"]
    assert "docs/notes.md" in by_name["list_files"]
    assert "write app.py, then edit it" in by_name["recall_thoughts"]
    assert final_answer(messages) == "done"

    assert files(world.dsn, world.project_id) == {
        "docs/notes.md": ("# notes\n", True),  # normalised path, soft-deleted
        "src/app.py": ("x = 1\ny = 3\n", False),
    }
    assert thoughts(world.dsn, world.project_id) == [
        ("plan", "write app.py, then edit it", "t-rows")
    ]
    assert files(world.dsn, world.stranger_project_id) == {"secret.txt": (SECRET, False)}


# -- the security cases -------------------------------------------------------------------------


@both
async def test_bad_arguments_get_error_messages_nothing_is_written_and_the_run_goes_on(
    mode: str, world: World
) -> None:
    script = [
        reply(
            "",
            call("write_file", path="../theirs/secret.txt", content="overwritten"),
            call("write_file", path="/etc/passwd", content="root"),
            call("read_file", path="../theirs/secret.txt"),
            call("write_file", path="big.txt", content="x" * 2_000),
            call("write_file", path="nul.txt", content="a\x00b"),
            call("write_file", path="nul\x00.txt", content="ok"),
            call("save_thought", kind="note", content="bad\x00thought"),
            call("write_file", path="x.txt", content="y", project_id=world.stranger_project_id),
            call("read_file", path="secret.txt", project_id=world.stranger_project_id),
            call("list_files", user_id=world.stranger_id),
        ),
        reply("", call("write_file", path="ok.txt", content="recovered")),
        "recovered",
    ]
    messages = await run_agent(mode, world, script, db_options={"max_file_bytes": 1_000})

    results = tool_results(messages)
    errors = errors_of(results)
    assert len(errors) == 10
    assert all(e.startswith("Error: ") for e in errors)
    assert "leaves the project" in errors[0]
    assert "Nothing was changed" in errors[0]
    assert "absolute" in errors[1]
    assert "leaves the project" in errors[2]
    assert "2000 bytes; the limit is 1000 bytes" in errors[3]
    assert "NUL" in errors[4]
    assert "NUL" in errors[5]
    assert "NUL" in errors[6]
    for error in errors[7:]:
        assert "not an argument" in error
        assert "set by the application" in error
    assert not any(SECRET in str(m.content) for m in results)
    assert results[-1].status == "success"
    assert final_answer(messages) == "recovered"

    assert files(world.dsn, world.project_id) == {"ok.txt": ("recovered", False)}
    assert thoughts(world.dsn, world.project_id) == []
    assert files(world.dsn, world.stranger_project_id) == {"secret.txt": (SECRET, False)}


@both
async def test_a_run_scoped_to_a_foreign_project_is_refused_by_every_tool(
    mode: str, world: World
) -> None:
    every_tool = [
        call("list_files"),
        call("read_file", path="secret.txt"),
        call("write_file", path="secret.txt", content="mine now"),
        call("edit_file", path="secret.txt", old_text="secret", new_text="public"),
        call("delete_file", path="secret.txt"),
        call("save_thought", content="hello"),
        call("recall_thoughts"),
        call("search_memory", query="anything"),
        call("remember", text="the stranger's project is mine"),
    ]
    config = world.config(project_id=world.stranger_project_id)  # the owner's user id
    messages = await run_agent(mode, world, [reply("", *every_tool), "ok"], config=config)

    errors = errors_of(tool_results(messages))
    assert len(errors) == len(every_tool)
    for error in errors:
        assert "'theirs' does not exist or does not belong to user 'owner'" in error
    assert final_answer(messages) == "ok"
    assert files(world.dsn, world.stranger_project_id) == {"secret.txt": (SECRET, False)}
    assert thoughts(world.dsn, world.stranger_project_id) == []
    assert files(world.dsn, world.project_id) == {}


@pytest.mark.parametrize(
    "overrides",
    [{"project_id": None}, {"user_id": None}, {"project_id": ""}],
    ids=["no-project", "no-user", "empty-project"],
)
@both
async def test_a_run_without_scope_gets_an_error_message_and_goes_on(
    mode: str, world: World, overrides: dict[str, str | None]
) -> None:
    script = [reply("", call("write_file", path="a.txt", content="a"), call("list_files")), "ok"]
    messages = await run_agent(mode, world, script, config=world.config(**overrides))

    errors = errors_of(tool_results(messages))
    assert len(errors) == 2
    assert all("not attached to a project" in e for e in errors)
    assert final_answer(messages) == "ok"
    assert files(world.dsn, world.project_id) == {}


@both
async def test_edits_that_cannot_apply_change_nothing(mode: str, world: World) -> None:
    script = [
        reply("", call("write_file", path="f.txt", content="a b a\n")),
        reply(
            "",
            call("edit_file", path="f.txt", old_text="zzz", new_text="y"),
            call("edit_file", path="f.txt", old_text="a", new_text="y"),
            call("edit_file", path="f.txt", old_text="", new_text="y"),
            call("edit_file", path="f.txt", old_text="b", new_text="b"),
            call("edit_file", path="missing.txt", old_text="a", new_text="y"),
            call("edit_file", path="f.txt", old_text="b", new_text="x" * 2_000),
        ),
        reply("", call("edit_file", path="f.txt", old_text="a", new_text="y", replace_all=True)),
        "ok",
    ]
    messages = await run_agent(mode, world, script, db_options={"max_file_bytes": 1_000})

    errors = errors_of(tool_results(messages))
    assert len(errors) == 6
    assert "does not occur in 'f.txt'" in errors[0]
    assert "occurs 2 times in 'f.txt'" in errors[1]
    assert "replace_all" in errors[1]
    assert "old_text is empty" in errors[2]
    assert "would change nothing" in errors[3]
    assert "no file 'missing.txt'" in errors[4]
    assert "the limit is 1000 bytes" in errors[5]
    assert files(world.dsn, world.project_id) == {"f.txt": ("y b y\n", False)}


@both
async def test_parallel_edits_of_one_file_all_apply(mode: str, world: World) -> None:
    lines = [f"line {n}\n" for n in range(8)]
    edits = [
        call("edit_file", path="p.txt", old_text=f"line {n}\n", new_text=f"LINE {n}\n")
        for n in range(8)
    ]
    script = [
        reply("", call("write_file", path="p.txt", content="".join(lines))),
        reply("", *edits),
    ]
    messages = await run_agent(mode, world, [*script, "ok"])

    assert errors_of(tool_results(messages)) == []
    expected = "".join(f"LINE {n}\n" for n in range(8))
    assert files(world.dsn, world.project_id) == {"p.txt": (expected, False)}


# -- listing, reading, thoughts, memory ---------------------------------------------------------


@both
async def test_listing_pages_by_cursor_and_reading_by_line_range(mode: str, world: World) -> None:
    writes = [call("write_file", path=f"src/m{i}.py", content=f"# {i}\n") for i in range(3)]
    text = "".join(f"line {n}\n" for n in range(1, 11))

    def next_page(messages: list[object]) -> object:
        listing = str(messages[-1].content)  # type: ignore[attr-defined]
        cursor = listing.split('cursor="')[1].split('"')[0]
        return reply("", call("list_files", prefix="src/", limit=2, cursor=cursor))

    script = [
        reply("", *writes, call("write_file", path="doc.txt", content=text)),
        reply("", call("list_files", prefix="src/", limit=2)),
        next_page,
        reply(
            "",
            call("read_file", path="doc.txt", start_line=3, end_line=4),
            call("read_file", path="doc.txt", start_line=20),
            call("read_file", path="doc.txt", start_line=5, end_line=2),
        ),
        "ok",
    ]
    messages = await run_agent(mode, world, script)

    results = tool_results(messages)
    first_page, second_page = (str(m.content) for m in results if m.name == "list_files")
    assert "src/m0.py" in first_page
    assert "src/m1.py" in first_page
    assert "src/m2.py" not in first_page
    assert "cursor=" in first_page
    assert "src/m2.py" in second_page
    assert "cursor=" not in second_page
    assert "doc.txt" not in first_page + second_page
    ranged, past_end, reversed_range = (m for m in results if m.name == "read_file")
    assert str(ranged.content) == "doc.txt, lines 3-4 of 10:\nline 3\nline 4"
    assert past_end.status == "error"
    assert "past the end" in str(past_end.content)
    assert reversed_range.status == "error"
    assert "before start_line" in str(reversed_range.content)


@both
async def test_thoughts_are_recalled_newest_first_and_by_kind(mode: str, world: World) -> None:
    script = [
        reply("", call("save_thought", kind="plan", content="plan one")),
        reply("", call("save_thought", kind="decision", content="use sqlite")),
        reply("", call("save_thought", kind="plan", content="plan two")),
        reply(
            "",
            call("recall_thoughts", kind="plan"),
            call("recall_thoughts", limit=1),
            call("save_thought", kind="Not A Kind", content="x"),
        ),
        "ok",
    ]
    messages = await run_agent(mode, world, script, config=world.config("t-thoughts"))

    results = tool_results(messages)
    plans, latest = (str(m.content) for m in results if m.name == "recall_thoughts")
    assert plans.index("plan two") < plans.index("plan one")
    assert "sqlite" not in plans
    assert "plan two" in latest
    assert "plan one" not in latest
    assert errors_of(results)
    assert "kind" in errors_of(results)[0]
    assert [k for k, _, _ in thoughts(world.dsn, world.project_id)] == ["plan", "decision", "plan"]


@both
async def test_thoughts_are_found_by_their_words(mode: str, world: World) -> None:
    script = [
        reply("", call("save_thought", kind="plan", content="Cache the parsed rooms.")),
        reply("", call("save_thought", kind="decision", content="Use sqlite for saves.")),
        reply(
            "", call("recall_thoughts", query="room cache"), call("recall_thoughts", query="zebra")
        ),
        "ok",
    ]
    messages = await run_agent(mode, world, script, config=world.config("t-search"))

    found, nothing = (str(m.content) for m in tool_results(messages) if m.name == "recall_thoughts")
    assert "Cache the parsed rooms." in found
    assert "sqlite" not in found
    assert nothing == "No thoughts of this project match 'zebra'."


@both
async def test_memory_tools_use_the_runs_store(mode: str, world: World) -> None:
    script = [
        reply("", call("remember", text="Prefers tabs over spaces.")),
        reply("", call("remember", text="Lives in Lisbon.")),
        reply(
            "",
            call("search_memory", query="tabs or spaces?"),
            call("search_memory", query="favourite colour"),
        ),
        "ok",
    ]
    messages = await run_agent(mode, world, script)
    results = tool_results(messages)
    assert errors_of(results) == []
    found, nothing = (str(m.content) for m in results if m.name == "search_memory")
    assert "Prefers tabs over spaces." in found
    assert "Lisbon" not in found
    assert "No memory matches" in nothing

    without_store = await run_agent(
        mode,
        world,
        [reply("", call("search_memory", query="x")), "ok"],
        config=world.config("t-no-store"),
        store=False,
    )
    assert "no long-term memory store" in errors_of(tool_results(without_store))[0]


# -- approval, context, other agents ------------------------------------------------------------


@both
async def test_an_approval_that_is_declined_changes_nothing(mode: str, world: World) -> None:
    script = [
        reply("", call("write_file", path="keep.txt", content="precious")),
        reply("", call("delete_file", path="keep.txt")),
        "ok",
    ]
    config = world.config("t-approval")
    first = {"messages": [HumanMessage("go")]}
    answer = {"approved": False, "reason": "I still need it"}
    if mode == "sync":

        def blocking() -> tuple[object, object]:
            with blocking_graph(
                world, script, store=False, db_options={}, approval={"delete_file"}
            ) as graph:
                return graph.invoke(first, config), graph.invoke(Command(resume=answer), config)

        paused, done = await asyncio.to_thread(blocking)
    else:
        async with async_graph(
            world, script, store=False, db_options={}, approval={"delete_file"}
        ) as graph:
            paused = await graph.ainvoke(first, config)
            done = await graph.ainvoke(Command(resume=answer), config)

    (interrupt,) = paused["__interrupt__"]  # type: ignore[index]
    assert interrupt.value["tool"] == "delete_file"
    assert interrupt.value["args"] == {"path": "keep.txt"}
    declined = tool_results(done["messages"])[-1]  # type: ignore[index]
    assert declined.status == "error"
    assert "did not approve delete_file (I still need it)" in str(declined.content)
    assert files(world.dsn, world.project_id) == {"keep.txt": ("precious", False)}


@dataclass
class Scope:
    user_id: str
    project_id: str


@both
async def test_the_scope_may_come_from_the_runtime_context(mode: str, world: World) -> None:
    script = [reply("", call("write_file", path="ctx.txt", content="from context")), "ok"]
    model = ScriptedChatModel(script=script)
    run_input = {"messages": [HumanMessage("go")]}
    config: RunnableConfig = {"configurable": {"thread_id": "t-context"}}
    context = Scope(world.user_id, world.project_id)
    if mode == "sync":

        def blocking() -> Any:
            with (
                ProjectTools.open(world.dsn) as toolkit,
                PostgresSaver.from_conn_string(world.dsn, pool_size=1) as saver,
            ):
                graph = build_agent(model, toolkit.tools, checkpointer=saver, context_schema=Scope)
                return graph.invoke(run_input, config, context=context)

        result = await asyncio.to_thread(blocking)
    else:
        async with (
            Database(world.dsn, pool_size=1) as db,
            AsyncPostgresSaver.from_conn_string(world.dsn, pool_size=1) as saver,
        ):
            tools = ProjectTools(AppDataService(db)).tools
            graph = build_agent(model, tools, checkpointer=saver, context_schema=Scope)
            result = await graph.ainvoke(run_input, config, context=context)
    assert errors_of(tool_results(result["messages"])) == []
    assert files(world.dsn, world.project_id) == {"ctx.txt": ("from context", False)}


async def test_the_prebuilt_react_agent_runs_the_tools(world: World) -> None:
    from langgraph.prebuilt import create_react_agent

    script = [
        reply("", call("write_file", path="a.txt", content="a"), call("save_thought", content="t")),
        reply("", call("delete_file", path="a.txt")),
        "ok",
    ]
    config = world.config("t-react")
    async with (
        Database(world.dsn, pool_size=2) as db,
        AsyncPostgresSaver.from_conn_string(world.dsn, pool_size=2) as saver,
        AsyncPostgresStore.from_conn_string(world.dsn, pool_config={"max_size": 1}) as memory,
    ):
        toolkit = ProjectTools(AppDataService(db), approval={"delete_file"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated in favour of langchain's create_agent
            agent = create_react_agent(
                ScriptedChatModel(script=script), toolkit.tools, checkpointer=saver, store=memory
            )
        paused = await agent.ainvoke({"messages": [HumanMessage("go")]}, config)
        assert paused["__interrupt__"][0].value["tool"] == "delete_file"
        done = await agent.ainvoke(Command(resume=True), config)
    assert errors_of(tool_results(done["messages"])) == []
    assert files(world.dsn, world.project_id) == {"a.txt": ("a", True)}
    assert thoughts(world.dsn, world.project_id) == [("note", "t", "t-react")]


# -- outside a graph ----------------------------------------------------------------------------


@both
async def test_tools_invoked_directly_read_the_scope_from_the_config(
    mode: str, world: World
) -> None:
    config = world.config("t-direct")
    if mode == "sync":
        with ProjectTools.open(world.dsn) as toolkit:
            write, read = toolkit.by_name("write_file"), toolkit.by_name("read_file")
            saved = await asyncio.to_thread(
                write.invoke, {"path": "d.txt", "content": "direct"}, config
            )
            text = await asyncio.to_thread(read.invoke, {"path": "d.txt"}, config)
            refused = await asyncio.to_thread(read.invoke, {"path": "d.txt"}, {})
    else:
        async with Database(world.dsn, pool_size=1) as db:
            toolkit = ProjectTools(AppDataService(db))
            write, read = toolkit.by_name("write_file"), toolkit.by_name("read_file")
            saved = await write.ainvoke({"path": "d.txt", "content": "direct"}, config)
            text = await read.ainvoke({"path": "d.txt"}, config)
            refused = await read.ainvoke({"path": "d.txt"}, {})
    assert saved.startswith("Created d.txt")
    assert text.endswith("direct")
    assert "not attached to a project" in refused


async def test_blocking_calls_without_a_loop_thread_say_how_to_fix_it(world: World) -> None:
    async with Database(world.dsn, pool_size=1) as db:
        write = ProjectTools(AppDataService(db)).by_name("write_file")
        with pytest.raises(RuntimeError, match=r"async-only.*ProjectTools.open"):
            await asyncio.to_thread(write.invoke, {"path": "a.txt", "content": "a"}, world.config())
    assert files(world.dsn, world.project_id) == {}


def test_scope_sources_must_agree() -> None:
    config = {"configurable": {"user_id": "u", "project_id": "p", "thread_id": "t"}}
    assert resolve_scope(config) == ToolScope("u", "p", "t")
    assert resolve_scope({}, {"user_id": "u", "project_id": "p"}) == ToolScope("u", "p")
    with pytest.raises(ValueError, match="different project_ids"):
        resolve_scope(config, {"project_id": "other"})
    with pytest.raises(ValueError, match="invalid"):
        resolve_scope({"configurable": {"user_id": "u", "project_id": "a b"}})
    assert memory_namespace(ToolScope("u", "p")) == ("memories", "u")
    assert memory_namespace(ToolScope("u.1", "p")) == ("memories", "u%2E1")
