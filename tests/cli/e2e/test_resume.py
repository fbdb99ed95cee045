"""A thread outlives its process: killed at an approval in one process, resumed in another.

The first process is the demo's own agent process (``checkpoint-pg demo --phase start``): it
runs the agent with the blocking saver until the delete asks for approval, and is killed with
SIGKILL. This test process then resumes the thread with the async saver, the async tools and
the async face of the project backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from langgraph.types import Command

from app_data import AppDataService, Database
from app_data.tools import ProjectTools, ScriptedChatModel, memory_namespace
from app_data.tools.backend import ProjectBackend
from app_data.tools.scope import ToolScope
from checkpoint_pg import AsyncPostgresSaver
from checkpoint_pg._runtime.dsn import DSN_ENV_VAR
from checkpoint_pg.cli.demo import (
    GAME_PY,
    PAUSED,
    PROJECT_TOOLS,
    SCRATCH_MD,
    build_deep_agent,
    demo_script,
)
from store import AsyncPostgresStore
from tests.support.agent_world import World, files, final_answer, thoughts, tool_results

ROOT = Path(__file__).resolve().parents[3]


def run_until_paused(world: World, thread_id: str) -> list[str]:
    """Run the agent in a new process until it waits for approval, then kill it."""
    command = [sys.executable, "-m", "checkpoint_pg.cli", "demo", "--phase", "start"]
    command += ["--thread", thread_id, "--user-id", world.user_id]
    command += ["--project-id", world.project_id]
    env = {**os.environ, DSN_ENV_VAR: world.dsn, "PYTHONUNBUFFERED": "1"}
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith(PAUSED):
                process.kill()
                break
        code = process.wait(timeout=60)
    assert lines[-1].startswith(PAUSED), "".join(lines)
    assert code != 0  # killed, not exited
    return lines


async def test_a_thread_killed_at_an_approval_resumes_in_a_new_process(world: World) -> None:
    thread_id = "t-killed"
    config = world.config(thread_id)
    output = "".join(run_until_paused(world, thread_id))
    assert "delete(file_path='/notes/scratch.md')" in output

    # What the killed process committed is there: files, thoughts, checkpoints.
    before = files(world.dsn, world.project_id)
    assert before["notes/scratch.md"] == (SCRATCH_MD, False)
    assert "Exits:" in before["src/game.py"][0]
    assert before["src/game.py"][0] != GAME_PY
    assert [kind for kind, _, _ in thoughts(world.dsn, world.project_id)] == ["plan", "decision"]

    async with (
        Database(world.dsn, pool_size=2) as db,
        AsyncPostgresSaver.from_conn_string(world.dsn, pool_size=2) as saver,
        AsyncPostgresStore.from_conn_string(world.dsn, pool_config={"max_size": 1}) as memory,
    ):
        toolkit = ProjectTools(AppDataService(db))
        graph = build_deep_agent(
            ScriptedChatModel(script=demo_script()),
            [toolkit.by_name(name) for name in PROJECT_TOOLS],
            backend=ProjectBackend(toolkit.service),
            checkpointer=saver,
            store=memory,
        )
        state = await graph.aget_state(config)
        assert state.next == ("HumanInTheLoopMiddleware.after_model",)
        (pending,) = state.interrupts
        (asked,) = pending.value["action_requests"]
        assert asked["args"] == {"file_path": "/notes/scratch.md"}
        written_before = len(
            [c async for c in saver.alist({"configurable": config["configurable"]})]
        )

        approve = Command(resume={"decisions": [{"type": "approve"}]})
        result = await graph.ainvoke(approve, config)
        remembered = await memory.asearch(memory_namespace(ToolScope(world.user_id, "mine")))
        written_after = len(
            [c async for c in saver.alist({"configurable": config["configurable"]})]
        )

    messages = result["messages"]
    assert final_answer(messages).startswith("Done:")
    assert all(m.status == "success" for m in tool_results(messages)[-4:])
    assert written_after > written_before
    assert files(world.dsn, world.project_id)["notes/scratch.md"] == (SCRATCH_MD, True)
    assert [kind for kind, _, _ in thoughts(world.dsn, world.project_id)] == [
        "plan",
        "decision",
        "summary",
    ]
    assert {item.value["thread_id"] for item in remembered} == {thread_id}
