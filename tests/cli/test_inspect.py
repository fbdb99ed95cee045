"""history, show and diff on threads a real graph wrote."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage

from checkpoint_pg import PostgresSaver
from tests.cli.conftest import CHAT, NESTED, WAITING, Seeded, chat_graph, parsed


def test_history_lists_checkpoints_newest_first_with_step_source_and_writes(
    seeded: Seeded,
) -> None:
    result = seeded.run("history", CHAT, "--full")
    assert result.exit_code == 0
    lines = [
        line for line in result.stdout.splitlines() if line[:8] in seeded.chat_checkpoints[0][:8]
    ]
    ids = [line.split()[0] for line in lines]
    assert ids == seeded.chat_checkpoints
    newest = lines[0].split()
    assert newest[1] == seeded.chat_checkpoints[1]  # parent
    assert newest[2:4] == ["4", "loop"]


def test_history_json_has_every_field(seeded: Seeded) -> None:
    data = parsed(seeded.run("history", CHAT, "--json", "--limit", "2"))
    assert [c["checkpoint_id"] for c in data["checkpoints"]] == seeded.chat_checkpoints[:2]
    second = data["checkpoints"][1]
    assert second["parent_checkpoint_id"] == seeded.chat_checkpoints[2]
    assert (second["step"], second["source"], second["writes"]) == (3, "loop", 2)
    assert second["ts"]
    assert second["metadata"]["step"] == 3


def test_history_ns_keeps_one_namespace(seeded: Seeded) -> None:
    everything = parsed(seeded.run("history", NESTED, "--json"))["checkpoints"]
    root = parsed(seeded.run("history", NESTED, "--json", "--ns", ""))["checkpoints"]
    assert {c["checkpoint_ns"] for c in everything} > {""}
    assert root
    assert all(c["checkpoint_ns"] == "" for c in root)


def test_history_of_an_unknown_thread_is_not_found(seeded: Seeded) -> None:
    result = seeded.run("history", "no-such-thread")
    assert result.exit_code == 3
    assert "no such thread: no-such-thread" in result.stderr


def test_show_decodes_the_latest_checkpoint(seeded: Seeded) -> None:
    result = seeded.run("show", CHAT)
    assert result.exit_code == 0
    assert seeded.chat_checkpoints[0] in result.stdout
    assert "4 messages, last ai: you said: how are you" in result.stdout
    turns = next(line for line in result.stdout.splitlines() if line.startswith("turns"))
    assert turns.split()[-1] == "2"
    assert "no pending writes" in result.stdout


def test_show_json_has_whole_values(seeded: Seeded) -> None:
    data = parsed(seeded.run("show", CHAT, seeded.chat_checkpoints[2], "--json"))
    assert data["checkpoint_id"] == seeded.chat_checkpoints[2]
    assert data["parent_checkpoint_id"] == seeded.chat_checkpoints[3]
    messages = data["channel_values"]["messages"]
    assert [(m["type"], m["content"]) for m in messages] == [
        ("human", "hello"),
        ("ai", "you said: hello"),
    ]
    assert data["metadata"]["source"] == "input"


def test_show_lists_pending_writes(seeded: Seeded) -> None:
    result = seeded.run("show", WAITING)
    assert "1 pending write(s)" in result.stdout
    assert "__interrupt__" in result.stdout
    data = parsed(seeded.run("show", WAITING, "--json"))
    (write,) = data["pending_writes"]
    assert write["channel"] == "__interrupt__"
    assert write["value"][0]["value"] == "approve?"


def test_show_truncates_big_values_in_the_table_only(seeded: Seeded) -> None:
    text = "x" * 5000
    with PostgresSaver.from_conn_string(seeded.dsn, pool_size=1) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "big"}}
        graph.invoke({"messages": [HumanMessage(text)], "turns": 0}, config)
    table = seeded.run("show", "big", "--width", "40")
    assert text not in table.stdout
    assert "…" in table.stdout
    data = parsed(seeded.run("show", "big", "--json"))
    assert data["channel_values"]["messages"][0]["content"] == text


def test_show_of_an_unknown_checkpoint_is_not_found(seeded: Seeded) -> None:
    result = seeded.run("show", CHAT, "1f000000-0000-6000-8000-000000000000")
    assert result.exit_code == 3
    assert "no checkpoint 1f000000-0000-6000-8000-000000000000 in thread chat-1" in result.stderr


def test_diff_shows_changed_added_and_removed_channels(seeded: Seeded) -> None:
    newest, _, middle = seeded.chat_checkpoints[:3]
    result = seeded.run("diff", CHAT, middle, newest)
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line}
    assert "changed" in rows["messages"]
    assert "2 messages, last ai: you said: hello" in rows["messages"]
    assert "4 messages, last ai: you said: how are you" in rows["messages"]
    assert "removed" in rows["__start__"]
    assert "1 removed, 2 changed, 0 unchanged" in result.stdout


def test_diff_json(seeded: Seeded) -> None:
    newest, _, middle = seeded.chat_checkpoints[:3]
    data = parsed(seeded.run("diff", CHAT, middle, newest, "--json"))
    assert (data["a"]["checkpoint_id"], data["b"]["checkpoint_id"]) == (middle, newest)
    assert data["changed"]["turns"] == {"a": 1, "b": 2}
    assert len(data["changed"]["messages"]["b"]) == 4
    assert list(data["removed"]) == ["__start__"]
    assert data["added"] == {}


def test_diff_with_an_unknown_checkpoint_is_not_found(seeded: Seeded) -> None:
    result = seeded.run("diff", CHAT, seeded.chat_checkpoints[0], "nope")
    assert result.exit_code == 3
    assert "no checkpoint nope" in result.stderr
