"""`ProjectTools`: an agent's project files, thoughts and memories as LangChain tools.

Each tool is written once, as a plan: a generator that yields the I/O it needs (a unit of work
on the `AppDataService`, or operations on the LangGraph store) and returns the text the model
reads. Two small drivers run the plans, one blocking and one async, so ``graph.invoke`` and
``graph.ainvoke`` run the same logic (a sans-I/O design: the plans never perform I/O themselves,
so neither driver can diverge from the other).

Scope: the user and project come from the run (`app_data.tools.scope`), never from tool
arguments: the argument schemas forbid unknown fields, so a model that adds ``project_id`` is
told so instead of being obeyed. Every call checks, in its own transaction, that the user owns
the project. Failures the model can act on (a bad path, a missing file, an ambiguous edit, an
oversized write, NUL bytes, a run without scope, a foreign project) come back as a tool message
with ``status="error"``, the run goes on, and nothing has been written: validation happens
before any statement, and a unit of work that fails rolls back whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias, cast

from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool, ToolException
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.prebuilt import ToolRuntime
from langgraph.store.base import BaseStore, Op, PutOp, SearchItem, SearchOp
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from app_data.errors import AppDataError, InvalidInputError
from app_data.schemas import Identifier
from app_data.service import AppDataService
from app_data.session import AppDataSettings, Database
from app_data.tools import render
from app_data.tools.loop import EventLoopThread
from app_data.tools.scope import SCOPE_KEYS, ToolScope, resolve_scope
from store.errors import StoreError

__all__ = ["DEFAULT_MAX_OUTPUT_CHARS", "TOOL_NAMES", "ProjectTools", "memory_namespace"]

DEFAULT_MAX_OUTPUT_CHARS = 20_000
_MEMORY_SCAN = 100  # memories ranked by shared words when the store has no embedding index
_MAX_MEMORY_CHARS = 4_000
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
_WORD = re.compile(r"\w+")

Runtime: TypeAlias = Annotated[ToolRuntime[Any, Any] | None, InjectedToolArg()]


def memory_namespace(scope: ToolScope) -> tuple[str, ...]:
    """The default store namespace of a user's memories: ``("memories", user_id)``.

    LangGraph refuses periods in namespace labels, so a ``.`` in the id is written ``%2E``
    (identifiers cannot contain ``%``, so two ids never share a namespace).
    """
    return ("memories", scope.user_id.replace(".", "%2E"))


# -- argument schemas (what the model sees; no scope fields, unknown fields refused) -----------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    # Injected by ToolNode from the run; not part of the schema the model sees.
    runtime: Runtime = None


class ListFilesArgs(_Args):
    prefix: str = Field("", description="Only files whose path starts with this, e.g. 'src/'.")
    limit: int = Field(50, ge=1, le=200, description="Most files to list in one page.")
    cursor: str | None = Field(
        None, description="The cursor a previous page ended with, to get the next page."
    )


class ReadFileArgs(_Args):
    path: str = Field(description="Path of the file in the project, e.g. 'src/main.py'.")
    start_line: int | None = Field(None, ge=1, description="First line to read (1-based).")
    end_line: int | None = Field(None, ge=1, description="Last line to read (inclusive).")


class WriteFileArgs(_Args):
    path: str = Field(description="Path of the file in the project, e.g. 'src/main.py'.")
    content: str = Field(description="The whole new content of the file.")


class EditFileArgs(_Args):
    path: str = Field(description="Path of the file in the project.")
    old_text: str = Field(description="Exact text to replace, copied from the file.")
    new_text: str = Field(description="Text to put in its place.")
    replace_all: bool = Field(
        False, description="Replace every occurrence instead of requiring exactly one."
    )


class DeleteFileArgs(_Args):
    path: str = Field(description="Path of the file to delete.")


class SaveThoughtArgs(_Args):
    content: str = Field(description="The thought: a plan, a decision, an observation, ...")
    kind: str = Field(
        "note",
        description="Lowercase label to recall it by, e.g. plan, decision, observation, todo.",
    )


class RecallThoughtsArgs(_Args):
    kind: str | None = Field(None, description="Only thoughts of this kind.")
    limit: int = Field(10, ge=1, le=50, description="Most thoughts to return.")
    query: str | None = Field(
        None,
        description="Words to search the thoughts for (full text, best match first); "
        "leave out for the most recent thoughts.",
    )


class SearchMemoryArgs(_Args):
    query: str = Field(description="What to look for, in plain words.")
    limit: int = Field(5, ge=1, le=20, description="Most memories to return.")


class RememberArgs(_Args):
    text: str = Field(
        max_length=_MAX_MEMORY_CHARS,
        description="A fact about the user or their preferences worth keeping across projects.",
    )


# -- plans: the logic of each tool, free of I/O ------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """Run one unit of work on the service."""

    call: Callable[[AppDataService], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class _Memory:
    """Run operations on the run's store."""

    ops: tuple[Op, ...]


_Effect: TypeAlias = _Data | _Memory
_Plan: TypeAlias = Generator[_Effect, Any, str]


@dataclass(frozen=True)
class _Spec:
    name: str
    args: type[_Args]
    description: str
    writes: bool


_SPECS = (
    _Spec(
        "list_files",
        ListFilesArgs,
        "List the project's files (path, size, last update), in path order, a page at a time.",
        writes=False,
    ),
    _Spec(
        "read_file",
        ReadFileArgs,
        "Read a file of the project, whole or a range of lines.",
        writes=False,
    ),
    _Spec(
        "write_file",
        WriteFileArgs,
        "Create a file in the project, or replace its whole content.",
        writes=True,
    ),
    _Spec(
        "edit_file",
        EditFileArgs,
        "Replace an exact piece of text in a file of the project. old_text must occur exactly "
        "once (or set replace_all); read the file first and copy the text exactly.",
        writes=True,
    ),
    _Spec(
        "delete_file",
        DeleteFileArgs,
        "Delete a file of the project (the application can restore it).",
        writes=True,
    ),
    _Spec(
        "save_thought",
        SaveThoughtArgs,
        "Save a thought about the project (a plan, a decision, an observation) to recall in "
        "later turns and runs.",
        writes=True,
    ),
    _Spec(
        "recall_thoughts",
        RecallThoughtsArgs,
        "Recall the project's thoughts: the most recent first, or those matching a query "
        "(full-text search, best match first); optionally of one kind.",
        writes=False,
    ),
    _Spec(
        "search_memory",
        SearchMemoryArgs,
        "Search the user's long-term memory (facts and preferences kept across projects).",
        writes=False,
    ),
    _Spec(
        "remember",
        RememberArgs,
        "Keep a fact about the user or their preferences in long-term memory, for later runs "
        "and other projects.",
        writes=True,
    ),
)
_MEMORY_TOOLS = frozenset({"search_memory", "remember"})
TOOL_NAMES = tuple(spec.name for spec in _SPECS)


def _is_identifier(value: str | None) -> bool:
    if value is None:
        return False
    try:
        _IDENTIFIER.validate_python(value)
    except ValidationError:
        return False
    return True


def _storable_thread(thread_id: str | None) -> str | None:
    """The run's thread id, or None when PostgreSQL could not store it (NUL, lone surrogate):
    no checkpointer can have saved such a thread, and the model cannot fix it."""
    if thread_id is None or "\x00" in thread_id:
        return None
    try:
        thread_id.encode()
    except UnicodeEncodeError:
        return None
    return thread_id


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _rank(items: list[SearchItem], query: str, limit: int) -> list[SearchItem]:
    """Items ranked by the store (with an index), else by words shared with `query`."""
    if any(item.score is not None for item in items):
        return items[:limit]
    wanted = _words(query)
    scored = [(len(wanted & _words(render.memory_text(i.value))), i) for i in items]
    # sorted() is stable: among equal scores the store's order (most recent first) stays.
    return [item for score, item in sorted(scored, key=lambda p: -p[0]) if score][:limit]


class _Plans:
    """The tools' logic; each method is a plan for one tool."""

    def __init__(
        self,
        max_output_chars: int,
        namespace: Callable[[ToolScope], tuple[str, ...]],
        store: BaseStore | None,
    ) -> None:
        self.max_output_chars = max_output_chars
        self.namespace = namespace
        self.store = store

    def list_files(self, scope: ToolScope, prefix: str, limit: int, cursor: str | None) -> _Plan:
        page = yield _Data(
            lambda s: s.list_files(
                scope.project_id,
                prefix=prefix or None,
                limit=limit,
                cursor=cursor,
                owner=scope.user_id,
            )
        )
        return render.file_page(page, prefix)

    def read_file(
        self, scope: ToolScope, path: str, start_line: int | None, end_line: int | None
    ) -> _Plan:
        record = yield _Data(lambda s: s.get_file(scope.project_id, path, owner=scope.user_id))
        if record is None:
            raise InvalidInputError(f"there is no file {path!r}: list_files shows what exists")
        return render.file_text(record, start_line, end_line, self.max_output_chars)

    def write_file(self, scope: ToolScope, path: str, content: str) -> _Plan:
        record = yield _Data(
            lambda s: s.save_file(scope.project_id, path, content, owner=scope.user_id)
        )
        return render.saved_file(record)

    def edit_file(
        self, scope: ToolScope, path: str, old_text: str, new_text: str, replace_all: bool
    ) -> _Plan:
        record = yield _Data(
            lambda s: s.edit_file(
                scope.project_id,
                path,
                old_text,
                new_text,
                replace_all=replace_all,
                owner=scope.user_id,
            )
        )
        if record is None:
            raise InvalidInputError(
                f"there is no file {path!r} to edit: list_files shows what exists, "
                "write_file creates one"
            )
        return render.edited_file(record, replace_all)

    def delete_file(self, scope: ToolScope, path: str) -> _Plan:
        info = yield _Data(lambda s: s.delete_file(scope.project_id, path, owner=scope.user_id))
        if info is None:
            raise InvalidInputError(f"there is no file {path!r} to delete")
        return render.deleted_file(info)

    def save_thought(self, scope: ToolScope, content: str, kind: str) -> _Plan:
        # A thread id that is not a plain identifier is kept in the metadata instead.
        run_thread = _storable_thread(scope.thread_id)
        valid = _is_identifier(run_thread)
        thread_id = run_thread if valid else None
        metadata = None if valid or run_thread is None else {"thread_id": run_thread}
        thought = yield _Data(
            lambda s: s.save_thought(
                scope.project_id,
                kind,
                content,
                metadata=metadata,
                thread_id=thread_id,
                owner=scope.user_id,
            )
        )
        return render.saved_thought(thought)

    def recall_thoughts(
        self, scope: ToolScope, kind: str | None, limit: int, query: str | None = None
    ) -> _Plan:
        if query is not None and query.strip():
            found = yield _Data(
                lambda s: s.search_thoughts(
                    scope.project_id, query, kind=kind, limit=limit, owner=scope.user_id
                )
            )
            return render.found_thoughts(found.items, query)
        page = yield _Data(
            lambda s: s.list_thoughts(scope.project_id, kind=kind, limit=limit, owner=scope.user_id)
        )
        return render.thoughts(page.items, kind)

    def search_memory(self, scope: ToolScope, query: str, limit: int) -> _Plan:
        yield _Data(lambda s: s.check_owner(scope.project_id, scope.user_id))
        indexed = bool(getattr(self.store, "index_config", None))
        search = SearchOp(
            namespace_prefix=self.namespace(scope),
            query=query,
            limit=limit if indexed else max(limit, _MEMORY_SCAN),
        )
        (found,) = yield _Memory((search,))
        return render.memories(_rank(list(found), query, limit), query)

    def remember(self, scope: ToolScope, text: str) -> _Plan:
        if "\x00" in text:
            raise InvalidInputError("text contains a NUL byte, which cannot be stored")
        if not text.strip():
            raise InvalidInputError("text is empty")
        yield _Data(lambda s: s.check_owner(scope.project_id, scope.user_id))
        key = "m-" + hashlib.sha256(text.encode()).hexdigest()[:16]
        value = {
            "text": text,
            "project_id": scope.project_id,
            "thread_id": _storable_thread(scope.thread_id),
        }
        yield _Memory((PutOp(self.namespace(scope), key, value),))
        return render.remembered(key)


# -- answers to approval requests ---------------------------------------------------------------

_YES = frozenset({"y", "yes", "ok", "approve", "approved", "allow", "true"})


def _approval(answer: Any) -> tuple[bool, str | None]:
    """Read a human's answer to an approval request: ``(approved, reason)``."""
    if isinstance(answer, bool):
        return answer, None
    if isinstance(answer, str):
        approved = answer.strip().lower() in _YES
        return approved, None if approved or not answer.strip() else answer.strip()
    if isinstance(answer, Mapping):
        reason = answer.get("reason") or answer.get("message")
        return answer.get("approved") is True, None if reason is None else str(reason)
    return False, None


def approval_binding(scope: ToolScope, tool: str, args: Mapping[str, Any]) -> str:
    """The digest an approval is bound to: the user, the project, the tool and its arguments.

    It travels in the interrupt's payload (``binding``). On resume the tool recomputes it from
    the scope of the resumed run and goes on only if the thread's pending interrupt carries the
    same digest, so an answer cannot be replayed into another project or for another user.
    """
    action = {
        "user_id": scope.user_id,
        "project_id": scope.project_id,
        "tool": tool,
        "args": {k: v for k, v in args.items() if k != "runtime"},
    }
    text = json.dumps(action, sort_keys=True, ensure_ascii=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Pending:
    """An approval granted on resume, still to be matched against what was asked."""

    binding: str
    checkpointer: BaseCheckpointSaver[Any] | None
    config: RunnableConfig
    task_id: str | None


def _pending(config: Mapping[str, Any], binding: str) -> _Pending:
    """Where the resumed task's interrupt was recorded: the task's parent checkpoint."""
    conf = config.get("configurable") or {}
    namespace = str(conf.get("checkpoint_ns") or "")
    parent = "|".join(namespace.split("|")[:-1])
    checkpoint_id = (conf.get("checkpoint_map") or {}).get(parent)
    where = {"thread_id": conf.get("thread_id"), "checkpoint_ns": parent}
    if checkpoint_id is not None:
        where["checkpoint_id"] = checkpoint_id
    checkpointer = conf.get("__pregel_checkpointer")
    return _Pending(
        binding=binding,
        checkpointer=checkpointer if isinstance(checkpointer, BaseCheckpointSaver) else None,
        config=RunnableConfig(configurable=where),
        task_id=conf.get("__pregel_task_id"),
    )


def _was_asked(pending: _Pending, saved: CheckpointTuple | None) -> bool:
    """True when the task's pending interrupt asked for exactly this binding."""
    for task_id, channel, value in (saved.pending_writes or []) if saved else []:
        if task_id != pending.task_id or channel != "__interrupt__":
            continue
        for asked in value if isinstance(value, (list, tuple)) else [value]:
            payload = getattr(asked, "value", None)
            if isinstance(payload, Mapping) and payload.get("binding") == pending.binding:
                return True
    return False


def _replayed(spec: _Spec) -> ToolException:
    return ToolException(
        f"Error: this approval of {spec.name} was given for another user, project or "
        "arguments than this run's; an approval only applies to the exact action it was asked "
        "for. Nothing was changed."
    )


# -- the toolkit ---------------------------------------------------------------------------------


class ProjectTools:
    """LangChain tools over one run's project: files, thoughts and (optionally) memories.

    Use `tools` in a ``ToolNode`` or a prebuilt agent. Start runs with the scope in their
    config: ``{"configurable": {"thread_id": ..., "user_id": ..., "project_id": ...}}`` (or a
    LangGraph context carrying ``user_id`` and ``project_id``).

    Async graphs (``ainvoke``) just need an `AppDataService`. Blocking graphs (``invoke``)
    call tools from worker threads, so the service must live on an `EventLoopThread`: open
    the toolkit with `ProjectTools.open`, which does that.

    Args:
        service: the data service the tools work through.
        loop: the loop thread that owns `service`'s database (required for blocking runs).
        store: long-term memory used when the run has none (the graph's store, compiled in
            with ``compile(store=...)``, wins).
        approval: names of tools that ask a human first, through LangGraph's ``interrupt()``
            (the run needs a checkpointer); resume with ``Command(resume=True)`` or
            ``{"approved": False, "reason": "..."}``. An approval applies only to the scope and
            arguments it was asked for (`approval_binding`): resumed under another user or
            project, the tool refuses and writes nothing.
        memory: include ``search_memory`` and ``remember``.
        memory_namespace: the store namespace of a scope's memories.
        max_output_chars: the most characters a read returns at once.
    """

    def __init__(
        self,
        service: AppDataService,
        *,
        loop: EventLoopThread | None = None,
        store: BaseStore | None = None,
        approval: frozenset[str] | set[str] | tuple[str, ...] = (),
        memory: bool = True,
        memory_namespace: Callable[[ToolScope], tuple[str, ...]] = memory_namespace,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        unknown = set(approval) - set(TOOL_NAMES)
        if unknown:
            raise ValueError(f"approval names unknown tools: {sorted(unknown)}")
        if max_output_chars < 100:
            raise ValueError("max_output_chars must be at least 100")
        self.service = service
        self.loop = loop
        self.store = store
        self.approval = frozenset(approval)
        self._namespace = memory_namespace
        self._max_output_chars = max_output_chars
        self.tools: list[BaseTool] = [
            self._tool(spec) for spec in _SPECS if memory or spec.name not in _MEMORY_TOOLS
        ]

    @classmethod
    @contextmanager
    def open(
        cls,
        url: str | AppDataSettings | None = None,
        *,
        migrate: bool = False,
        database_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Iterator[ProjectTools]:
        """Open a database on a loop thread of its own and yield tools for blocking runs.

        Args:
            url: the database URL or settings (default: from the environment).
            migrate: apply app_data's migrations first.
            database_options: settings overrides for the `Database` (``pool_size``, ...).
            options: keyword arguments of `ProjectTools`.
        """
        loop = EventLoopThread()
        try:

            async def connect() -> Database:
                db = Database(url, **dict(database_options or {}))
                await db.connect()
                if migrate:
                    from app_data import migrations

                    await migrations.upgrade(db)
                return db

            db = loop.run(connect())
            try:
                yield cls(AppDataService(db), loop=loop, **options)
            finally:
                loop.run(db.close())
        finally:
            loop.close()

    def run_sync(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine of the service (``tools.service.create_user(...)``) and wait for it."""
        if self.loop is None:
            coro.close()
            raise RuntimeError(
                "run_sync needs a loop thread: open the tools with ProjectTools.open"
            )
        return self.loop.run(coro)

    def by_name(self, name: str) -> BaseTool:
        """The tool called `name`."""
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(name)

    # -- building the tools ----------------------------------------------------------------------

    def _tool(self, spec: _Spec) -> StructuredTool:
        def call(runtime: Runtime = None, **args: Any) -> str:
            return self._run(spec, runtime, args)

        async def acall(runtime: Runtime = None, **args: Any) -> str:
            return await self._arun(spec, runtime, args)

        return StructuredTool(
            name=spec.name,
            description=spec.description,
            args_schema=spec.args,
            func=call,
            coroutine=acall,
            handle_tool_error=True,
            handle_validation_error=_invalid_arguments(spec),
        )

    # -- drivers: one plan, run blocking or async -------------------------------------------------

    def _start(
        self, spec: _Spec, runtime: ToolRuntime[Any, Any] | None, args: dict[str, Any]
    ) -> tuple[_Plan, BaseStore | None, _Pending | None]:
        config = runtime.config if runtime is not None else ensure_config()
        context = runtime.context if runtime is not None else None
        store = (runtime.store if runtime is not None else None) or self.store
        try:
            scope = resolve_scope(config, context)
        except AppDataError as exc:
            raise ToolException(_failure(spec, exc)) from None
        pending = self._ask(spec, scope, args, config) if spec.name in self.approval else None
        plans = _Plans(self._max_output_chars, self._namespace, store)
        plan = cast(_Plan, getattr(plans, spec.name)(scope, **args))
        return plan, store, pending

    def _ask(
        self, spec: _Spec, scope: ToolScope, args: dict[str, Any], config: Mapping[str, Any]
    ) -> _Pending:
        """Ask a human (``interrupt()``); on resume, the approval still to be matched."""
        target = args.get("path") or args.get("text")
        question = f"Allow the agent to call {spec.name}" + (f" on {target!r}" if target else "")
        binding = approval_binding(scope, spec.name, args)
        answer = interrupt(
            {
                "type": "approval",
                "tool": spec.name,
                "args": dict(args),
                "user_id": scope.user_id,
                "project_id": scope.project_id,
                "binding": binding,
                "question": question + "?",
            }
        )
        approved, reason = _approval(answer)
        if not approved:
            why = f" ({reason})" if reason else ""
            raise ToolException(
                f"Error: the user did not approve {spec.name}{why}. Nothing was changed; do "
                "not try it again unless the user asks."
            )
        return _pending(config, binding)

    def _run(self, spec: _Spec, runtime: ToolRuntime[Any, Any] | None, args: dict[str, Any]) -> str:
        plan, store, pending = self._start(spec, runtime, args)
        if pending is not None:
            saver = pending.checkpointer
            if saver is None or not _was_asked(pending, saver.get_tuple(pending.config)):
                plan.close()
                raise _replayed(spec)
        try:
            effect = next(plan)
            while True:
                if isinstance(effect, _Data):
                    if self.loop is None:
                        raise RuntimeError(
                            "these ProjectTools are async-only (no loop thread owns the "
                            "database): run the graph with ainvoke/astream, or open the tools "
                            "with ProjectTools.open(url) for blocking runs"
                        )
                    result: Any = self.loop.run(effect.call(self.service))
                else:
                    result = _require(store, spec).batch(effect.ops)
                effect = plan.send(result)
        except StopIteration as done:
            return cast(str, done.value)
        except (AppDataError, StoreError) as exc:
            raise ToolException(_failure(spec, exc)) from None
        finally:
            plan.close()

    async def _arun(
        self, spec: _Spec, runtime: ToolRuntime[Any, Any] | None, args: dict[str, Any]
    ) -> str:
        plan, store, pending = self._start(spec, runtime, args)
        if pending is not None:
            saver = pending.checkpointer
            if saver is None or not _was_asked(pending, await saver.aget_tuple(pending.config)):
                plan.close()
                raise _replayed(spec)
        try:
            effect = next(plan)
            while True:
                if isinstance(effect, _Data):
                    work = effect.call(self.service)
                    result: Any = await (self.loop.arun(work) if self.loop else work)
                else:
                    result = await _require(store, spec).abatch(effect.ops)
                effect = plan.send(result)
        except StopIteration as done:
            return cast(str, done.value)
        except (AppDataError, StoreError) as exc:
            raise ToolException(_failure(spec, exc)) from None
        finally:
            plan.close()


def _require(store: BaseStore | None, spec: _Spec) -> BaseStore:
    if store is None:
        raise ToolException(
            f"Error: {spec.name} is unavailable: this run has no long-term memory store."
        )
    return store


def _failure(spec: _Spec, exc: Exception) -> str:
    """The tool message for a failure the model can read and act on."""
    message = str(exc).rstrip(".")
    after = " Nothing was changed." if spec.writes else ""
    return f"Error: {message}.{after}"


def _invalid_arguments(spec: _Spec) -> Callable[[Exception], str]:
    """How a tool explains arguments that fail its schema (one line per problem)."""

    def explain(exc: Exception) -> str:
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        problems: list[str] = []
        for error in errors:
            field = ".".join(str(part) for part in error["loc"]) or "arguments"
            if error["type"] == "extra_forbidden" and field in (*SCOPE_KEYS, "thread_id"):
                problems.append(
                    f"{field} is not an argument: the user and project are set by the "
                    "application for the whole run, and tools only work in that project"
                )
            elif error["type"] == "extra_forbidden":
                problems.append(f"{field} is not an argument of {spec.name}")
            else:
                problems.append(f"{field}: {error['msg']}")
        detail = "; ".join(problems) or str(exc)
        after = " Nothing was changed." if spec.writes else ""
        return f"Error: invalid arguments for {spec.name}: {detail}.{after}"

    return explain
