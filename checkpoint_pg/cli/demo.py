"""`checkpoint-pg demo`: the whole product in one command.

1. PostgreSQL: the embedded server (data in ``~/.local/share/checkpoint-pg/pg18``) unless a DSN
   is given; then ``setup()`` of the saver and the store and app_data's migrations.
2. A demo user and project (created once, reused after) and a memory in the store.
3. Process 1 runs a deep agent (deepagents' ``create_deep_agent``), driven by a scripted chat
   model (no network, no API key), with the four things it persists in one PostgreSQL:
   `PostgresSaver` (checkpoints), `PostgresStore` (memories), `ProjectBackend` (the project's
   files, behind deepagents' own ls/read/write/edit/glob/grep/delete tools) and a node cache
   (`PostgresCache`). `ProjectTools` adds thoughts and memories. Over two user turns it writes,
   greps, globs and edits files and saves thoughts, then asks to delete a file; deepagents'
   human-in-the-loop asks a human first (``interrupt()``) and the run pauses. The demo kills
   process 1.
4. Process 2, a new interpreter, finds the thread in PostgreSQL, approves, and the agent
   finishes from the checkpoint.
5. The summary: the thread's checkpoint history (which process wrote each one), the project's
   files, this thread's thoughts and the user's memories.

Each run uses a new thread on the same user and project, so running it again is harmless: it
rewrites the same files, adds its thoughts, and overwrites its memory. The two agent processes
are ``python -m checkpoint_pg.cli demo --phase ...``; they get the DSN through the environment
(never on a command line) and nothing prints it unmasked.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.store.base import BaseStore
from langgraph.types import Command

from checkpoint_pg._runtime.dsn import DSN_ENV_VAR, mask_dsn
from checkpoint_pg.cache import PostgresCache
from checkpoint_pg.cli.embedded import dsn_or_embedded as database
from checkpoint_pg.sync import PostgresSaver

__all__ = [
    "DEMO_PROJECT_ID",
    "DEMO_USER_ID",
    "DemoError",
    "DemoResult",
    "build_agent",
    "build_deep_agent",
    "database",
    "demo_script",
    "next_steps",
    "run_demo",
    "run_phase",
]

Say = Callable[[str], None]

DEMO_USER_ID = "checkpoint-pg-demo-user"
DEMO_WALLET = "demo:checkpoint-pg"
DEMO_PROJECT_ID = "checkpoint-pg-demo-project"
DEMO_PROJECT_NAME = "Text adventure (checkpoint-pg demo)"
STYLE_MEMORY = "Coding style: small modules, type hints and docstrings."
PAUSED = "[demo] paused: waiting for a human to approve"
PHASE_TIMEOUT = 120.0

SYSTEM_PROMPT = (
    "You are a coding agent. Keep your working context in the project: its files, and thoughts "
    "(plans, decisions) you can recall later. Ask before deleting anything."
)
FIRST_REQUEST = "Start a tiny text adventure in Python. Keep notes as you go."
SECOND_REQUEST = "Looks good. Clean up the scratch notes, then wrap up."

ROOMS_PY = '''"""Rooms of the adventure and the ways between them."""

ROOMS: dict[str, dict[str, str]] = {
    "hall": {"north": "library", "east": "kitchen"},
    "library": {"south": "hall"},
    "kitchen": {"west": "hall"},
}


def exits(room: str) -> list[str]:
    """The directions one can leave `room` by."""
    return sorted(ROOMS[room])
'''

GAME_PY = '''"""A tiny text adventure: walk between rooms until you type 'quit'."""

from rooms import ROOMS, exits


def main() -> None:
    """Read moves until 'quit'."""
    room = "hall"
    while True:
        print(f"You are in the {room}.")
        move = input("> ").strip().lower()
        if move == "quit":
            break
        room = ROOMS[room].get(move, room)


if __name__ == "__main__":
    main()
'''

SCRATCH_MD = "# Scratch\n\n- a map command?\n- rooms could hold items\n"


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which."""


@dataclass
class DemoResult:
    """What a demo run did (for tests and callers of `run_demo`)."""

    thread_id: str
    user_id: str
    project_id: str
    checkpoints: int = 0
    messages: int = 0
    files: list[str] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)
    final_answer: str = ""
    processes: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


# -- the agent ----------------------------------------------------------------------------------


def demo_script() -> list[Any]:
    """The scripted model's replies, one per agent step, over both user turns.

    File work goes through deepagents' own tools (their argument names: ``file_path``,
    ``old_string``, ...), served by `ProjectBackend`; thoughts and memories through
    `ProjectTools`. Long on purpose: it is data, and the conversation reads best as one list.
    """
    from app_data.tools import call, reply

    greeting = 'print(f"You are in the {room}.")'
    return [
        reply(
            "First, what do I know about this user and this project?",
            call("search_memory", query="coding style"),
            call("recall_thoughts", limit=3),
        ),
        reply(
            "",
            call(
                "save_thought",
                kind="plan",
                content="Two modules: src/rooms.py holds the map as data, src/game.py the input "
                "loop. Small functions with type hints and docstrings, as the user likes.",
            ),
        ),
        reply(
            "",
            call("write_file", file_path="/src/rooms.py", content=ROOMS_PY),
            call("write_file", file_path="/src/game.py", content=GAME_PY),
            call("write_file", file_path="/notes/scratch.md", content=SCRATCH_MD),
        ),
        reply(
            "Players should see the exits of each room.",
            call(
                "edit_file",
                file_path="/src/game.py",
                old_string='print("You are in the {room}.")',
                new_string=greeting,
            ),
        ),
        reply(
            "That text was not exact; let me find it.",
            call("grep", pattern="You are in the", path="/src", output_mode="content"),
        ),
        reply(
            "",
            call(
                "edit_file",
                file_path="/src/game.py",
                old_string=greeting,
                new_string="print(f\"You are in the {room}. Exits: {', '.join(exits(room))}.\")",
            ),
        ),
        reply(
            "",
            call(
                "save_thought",
                kind="decision",
                content="The map is plain data in src/rooms.py and game.py only reads it, so a "
                "new room needs no code change.",
            ),
        ),
        "First version done: src/rooms.py and src/game.py. Ideas are in notes/scratch.md.",
        reply("", call("delete", file_path="/notes/scratch.md")),
        reply(
            "",
            call(
                "save_thought",
                kind="summary",
                content="Adventure v1: three rooms, exits shown; scratch notes removed.",
            ),
            call("remember", text="Wants scratch notes deleted once a feature is done."),
        ),
        reply("", call("glob", pattern="**/*.py")),
        "Done: the adventure has two modules, the scratch notes are gone, and my notes are "
        "saved for next time.",
    ]


# ProjectTools that deepagents has no tool for (its file tools come from the backend).
PROJECT_TOOLS = ("save_thought", "recall_thoughts", "search_memory", "remember")


def build_agent(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    context_schema: type[Any] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The light path: a plain tool-calling agent (the model, then a `ToolNode`, until it
    answers) over `ProjectTools`, for graphs that do not use deepagents."""
    bound = model.bind_tools(list(tools))

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke([SystemMessage(SYSTEM_PROMPT), *state["messages"]])]}

    builder = StateGraph(MessagesState, context_schema=context_schema)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(list(tools)))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, store=store)


def build_deep_agent(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    backend: Any,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    cache: BaseCache[Any] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A deep agent whose files are the project's, asking a human before it deletes one.

    `cache` is handed to LangGraph with the graph; create_deep_agent (like langchain's
    create_agent under it) gives its nodes no `CachePolicy` and no way to set one, so the
    cache is wired in but no node of this graph is cached.
    """
    from deepagents import create_deep_agent

    return create_deep_agent(
        model,
        list(tools),
        system_prompt=SYSTEM_PROMPT,
        backend=backend,
        interrupt_on={"delete": True},
        checkpointer=checkpointer,
        store=store,
        cache=cache,
    )


def _config(thread_id: str, user_id: str, project_id: str, process: int) -> RunnableConfig:
    # Configurable strings are copied into every checkpoint's metadata: the history shows
    # which process wrote each checkpoint, and app_data finds the project's threads.
    return {
        "configurable": {
            "thread_id": thread_id,
            "user_id": user_id,
            "project_id": project_id,
            "demo_process": str(process),
        }
    }


# -- printing -----------------------------------------------------------------------------------


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _short(text: str, width: int = 90, head: int = 3) -> str:
    """`text` on one line: its first `head` non-blank lines joined, and a count of the rest."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or [""]
    shown = " | ".join(lines[:head])
    more = len(lines) - head
    if more <= 0:
        return _clip(shown, width)
    return f"{_clip(shown, width)}  (+{more} more line{'s' if more > 1 else ''})"


def next_steps(thread_id: str, dsn: str | None) -> list[str]:
    """The commands that show what the demo wrote, on the server it wrote it to."""
    target = "--embedded" if dsn is None else f"--dsn '{mask_dsn(dsn)}'"
    return [
        f"checkpoint-pg threads {target}",
        f"checkpoint-pg history {thread_id} {target}",
        f"checkpoint-pg show {thread_id} {target}",
    ]


def _arguments(args: Mapping[str, Any]) -> str:
    shown = []
    for key, value in args.items():
        if isinstance(value, str) and ("\n" in value or len(value) > 40):
            shown.append(f"{key}=<{len(value)} chars>")
        else:
            shown.append(f"{key}={value!r}")
    return ", ".join(shown)


def _show(message: BaseMessage, say: Say) -> None:
    if isinstance(message, HumanMessage):
        say(f"user: {_short(str(message.content))}")
    elif isinstance(message, AIMessage):
        if str(message.content).strip():
            say(f"  agent: {_short(str(message.content))}")
        for tool_call in message.tool_calls:
            say(f"  agent -> {tool_call['name']}({_arguments(tool_call['args'])})")
    elif isinstance(message, ToolMessage):
        text = str(message.content)
        if message.status == "error":
            say(f"    {message.name}: ERROR {_short(text.removeprefix('Error: '), 200)}")
        else:
            say(f"    {message.name}: {_short(text)}")


def _stream(
    graph: CompiledStateGraph[Any, Any, Any, Any], run_input: Any, config: Any, say: Say
) -> Any:
    """Run the graph, printing each new message; return the pending interrupt, if any."""
    for update in graph.stream(run_input, config, stream_mode="updates"):
        for node, values in update.items():
            if node == "__interrupt__":
                return values[0].value
            for message in (values or {}).get("messages", []):
                _show(message, say)
    return None


# -- the two agent processes --------------------------------------------------------------------


@contextmanager
def _agent(url: str) -> Iterator[tuple[CompiledStateGraph[Any, Any, Any, Any], PostgresSaver]]:
    from app_data.tools import ProjectTools, ScriptedChatModel
    from app_data.tools.backend import ProjectBackend
    from store import PostgresStore

    with (
        PostgresSaver.from_conn_string(url, pool_size=4) as saver,
        PostgresStore.from_conn_string(url, pool_config={"max_size": 2}) as memory,
        PostgresCache.from_conn_string(url, pool_size=2) as cache,
        ProjectTools.open(url) as toolkit,
    ):
        model = ScriptedChatModel(script=demo_script())
        files = ProjectBackend(toolkit.service, loop=toolkit.loop)  # same service, other face
        tools = [toolkit.by_name(name) for name in PROJECT_TOOLS]
        agent = build_deep_agent(
            model, tools, backend=files, checkpointer=saver, store=memory, cache=cache
        )
        yield agent, saver


def _question(request: Mapping[str, Any]) -> str:
    """The approval deepagents' human-in-the-loop asks for, in one line."""
    actions = request.get("action_requests") or [{}]
    name, args = actions[0].get("name", "?"), actions[0].get("args", {})
    return f"Allow the agent to call {name}({_arguments(args)})?"


def run_phase(
    phase: str, url: str, thread_id: str, user_id: str, project_id: str, say: Say = print
) -> None:
    """Run one agent process of the demo: ``start`` (until the approval) or ``resume``."""
    if phase == "start":
        config = _config(thread_id, user_id, project_id, 1)
        with _agent(url) as (graph, _):
            asked = None
            for request in (FIRST_REQUEST, SECOND_REQUEST):
                say(f"user: {request}")
                asked = _stream(graph, {"messages": [HumanMessage(request)]}, config, say)
            if not isinstance(asked, Mapping):
                raise DemoError("the agent finished without asking for approval")
            say(f"  interrupt: {_question(asked)}")
            say(f"{PAUSED} (the thread is saved in PostgreSQL)")
            sys.stdout.flush()
            # Wait, connections open, to be killed: the parent ends this process the hard way.
            sys.stdin.read()
        return
    if phase != "resume":
        raise DemoError(f"unknown demo phase {phase!r}")
    config = _config(thread_id, user_id, project_id, 2)
    with _agent(url) as (graph, saver):
        state = graph.get_state(config)
        if not state.interrupts:
            raise DemoError(f"thread {thread_id} is not waiting for an approval")
        question = _question(state.interrupts[0].value)
        checkpoints = sum(1 for _ in saver.list({"configurable": {"thread_id": thread_id}}))
        say(
            f"found thread {thread_id} in PostgreSQL: {checkpoints} checkpoints, "
            f"{len(state.values['messages'])} messages, next node: {', '.join(state.next)}"
        )
        say(f"  pending interrupt: {question}")
        say("human: approved; the agent resumes from the checkpoint")
        approve: Command[Any] = Command(resume={"decisions": [{"type": "approve"}]})
        if _stream(graph, approve, config, say) is not None:
            raise DemoError("the agent asked for another approval")


def _child_environment(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env[DSN_ENV_VAR] = url  # through the environment: a command line is visible to everyone
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    return env


def _spawn(
    phase: str, url: str, thread_id: str, user_id: str, project_id: str, say: Say
) -> tuple[int, bool]:
    """Run a phase in a new Python process, relaying its output; return (pid, paused)."""
    command = [
        sys.executable,
        "-m",
        "checkpoint_pg.cli",
        "demo",
        "--phase",
        phase,
        "--thread",
        thread_id,
        "--user-id",
        user_id,
        "--project-id",
        project_id,
    ]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_child_environment(url),
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    watchdog = threading.Timer(PHASE_TIMEOUT, process.kill)
    watchdog.start()
    paused = False
    try:
        assert process.stdout is not None
        for line in process.stdout:
            say(line.rstrip("\n"))
            if line.startswith(PAUSED):
                paused = True
                process.kill()  # SIGKILL: no clean shutdown, no chance to save anything more
                break
        code = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
    if not paused and code != 0:
        raise DemoError(f"process {phase!r} (pid {process.pid}) failed with exit code {code}")
    return process.pid, paused


# -- the parent: setup, orchestration, summary --------------------------------------------------


async def _prepare(url: str) -> tuple[str, str, bool]:
    """Apply app_data's migrations; create the demo user and project unless they exist."""
    from app_data import AppDataService, ConflictError, Database, ProjectType, migrations

    async with Database(url, pool_size=1, max_overflow=1) as db:
        await migrations.upgrade(db)
        service = AppDataService(db)
        created = False
        if await service.get_user(DEMO_USER_ID) is None:
            try:
                await service.create_user(DEMO_WALLET, id=DEMO_USER_ID, username="demo")
                created = True
            except ConflictError:  # another demo run created it first
                pass
        if await service.get_project(DEMO_PROJECT_ID) is None:
            try:
                await service.create_project(
                    DEMO_USER_ID,
                    DEMO_PROJECT_NAME,
                    ProjectType.GAME,
                    id=DEMO_PROJECT_ID,
                    description="Made by `checkpoint-pg demo`.",
                )
                created = True
            except ConflictError:
                pass
        await service.check_owner(DEMO_PROJECT_ID, DEMO_USER_ID)
        return DEMO_USER_ID, DEMO_PROJECT_ID, created


def _setup(url: str, say: Say) -> tuple[str, str]:
    from app_data.tools import memory_namespace
    from app_data.tools.scope import ToolScope
    from store import PostgresStore

    with PostgresSaver.from_conn_string(url, pool_size=1) as saver:
        saver.setup()
    with PostgresCache.from_conn_string(url) as cache:
        cache.setup()
    user_id, project_id, created = asyncio.run(_prepare(url))
    namespace = memory_namespace(ToolScope(user_id, project_id))
    with PostgresStore.from_conn_string(url, pool_config={"max_size": 1}) as memory:
        memory.setup()
        memory.put(namespace, "coding-style", {"text": STYLE_MEMORY})
    say("setup: checkpoint, store and node-cache tables and application schema are ready")
    say(
        f"{'created' if created else 'reusing'} user {user_id} and project {project_id} "
        f"({DEMO_PROJECT_NAME!r})"
    )
    say(f"store: memory {'/'.join(namespace)} holds {STYLE_MEMORY!r}")
    return user_id, project_id


def _history(url: str, thread_id: str, say: Say, result: DemoResult) -> None:
    from app_data.tools import ScriptedChatModel

    with PostgresSaver.from_conn_string(url, pool_size=1) as saver:
        # The messages live in a delta channel: the graph, not the raw checkpoint, rebuilds them.
        reader = build_deep_agent(
            ScriptedChatModel(script=[]), [], backend=None, checkpointer=saver
        )
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        history = list(reader.get_state_history(config))
    history.reverse()
    result.checkpoints = len(history)
    say(f"checkpoint history of thread {thread_id} ({len(history)} checkpoints, oldest first):")
    say("  step  process  source  messages  latest message")
    for snapshot in history:
        meta = snapshot.metadata or {}
        messages = snapshot.values.get("messages", [])
        paused = bool(snapshot.interrupts)
        latest = "-"
        if messages:
            last = messages[-1]
            calls = getattr(last, "tool_calls", None)
            if calls:
                latest = f"{last.type}: calls " + ", ".join(c["name"] for c in calls)
            else:
                latest = f"{last.type}: {_short(str(last.content), 48)}"
        say(
            f"  {meta.get('step', '?'):>4}  {meta.get('demo_process', '?'):>7}  "
            f"{meta.get('source', '?'):<6}  {len(messages):>8}  {latest}"
            + ("  <- paused for approval" if paused else "")
        )
        result.messages = len(messages)
        if messages and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls:
            result.final_answer = str(messages[-1].content)


async def _report(result: DemoResult, say: Say, url: str) -> None:
    from app_data import AppDataService, Database
    from app_data.tools.render import size, stamp

    async with Database(url, pool_size=1, max_overflow=1) as db:
        service = AppDataService(db)
        project = await service.get_project(result.project_id)
        files = await service.list_files(result.project_id, include_deleted=True, limit=100)
        thoughts = await service.list_thoughts(result.project_id, limit=100)
    name = project.name if project else result.project_id
    say(f"files of project {name!r}:")
    for info in files.items:
        state = f"deleted {stamp(info.deleted_at)}" if info.deleted_at else "live"
        updated = stamp(info.updated_at)
        say(f"  {info.path:<18} {size(info.size_bytes):>9}  updated {updated}  {state}")
        (result.deleted_files if info.deleted_at else result.files).append(info.path)
    mine = [t for t in reversed(thoughts.items) if t.thread_id == result.thread_id]
    say(f"thoughts saved by this thread ({len(mine)} of {len(thoughts.items)} in the project):")
    for thought in mine:
        say(f"  {thought.kind:<9} {_short(thought.content, 80)}")
        result.thoughts.append(thought.kind)


def _memories(url: str, result: DemoResult, say: Say) -> None:
    from app_data.tools import memory_namespace
    from app_data.tools.scope import ToolScope
    from store import PostgresStore

    namespace = memory_namespace(ToolScope(result.user_id, result.project_id))
    with PostgresStore.from_conn_string(url, pool_config={"max_size": 1}) as memory:
        items = memory.search(namespace, limit=20)
    say(f"long-term memory {'/'.join(namespace)} in the store:")
    for item in items:
        text = str(item.value.get("text", item.value))
        say(f"  {item.key:<20} {_short(text, 70)}")
        result.memories.append(text)


def run_demo(dsn: str | None, say: Say = print) -> DemoResult:
    """Run the whole demo (see the module docstring) and return what it did."""
    started = time.perf_counter()
    with database(dsn, say) as url:
        user_id, project_id = _setup(url, say)
        thread_id = f"demo-{uuid.uuid4().hex[:8]}"
        result = DemoResult(thread_id=thread_id, user_id=user_id, project_id=project_id)
        result.timings["setup"] = time.perf_counter() - started

        say("")
        say(f"== process 1: the agent works on thread {thread_id} until it needs approval ==")
        mark = time.perf_counter()
        pid, paused = _spawn("start", url, thread_id, user_id, project_id, say)
        if not paused:
            raise DemoError("process 1 ended without pausing for approval")
        result.processes.append(pid)
        result.timings["process 1"] = time.perf_counter() - mark
        how = "with SIGKILL " if os.name == "posix" else ""
        say(f"== process 1 (pid {pid}) killed {how}while it waited: no clean shutdown ==")

        say("")
        say("== process 2: a new Python process resumes the thread from PostgreSQL ==")
        mark = time.perf_counter()
        pid, _ = _spawn("resume", url, thread_id, user_id, project_id, say)
        result.processes.append(pid)
        result.timings["process 2"] = time.perf_counter() - mark
        say(f"== process 2 (pid {pid}) finished ==")

        say("")
        mark = time.perf_counter()
        _history(url, thread_id, say, result)
        asyncio.run(_report(result, say, url))
        _memories(url, result, say)
        result.timings["summary"] = time.perf_counter() - mark
    result.timings["total"] = time.perf_counter() - started
    say("")
    say(f"final answer: {result.final_answer}")
    say(
        "timings: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.timings.items())
    )
    say("")
    say("look at what it wrote:")
    for command in next_steps(thread_id, dsn):
        say(f"  {command}")
    return result
