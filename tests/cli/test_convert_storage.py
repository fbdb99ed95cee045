"""`checkpoint-pg convert-storage`: threads move between the official format and delta storage,
thread by thread, resumably, with their histories unchanged."""

from __future__ import annotations

from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver

from checkpoint_pg import PostgresSaver
from checkpoint_pg.serde import CompressingSerializer
from tests.checkpoint.test_delta_storage import TURNS, blob_types, cfg, chat_graph, history, say
from tests.cli.conftest import invoke, parsed


def _write(dsn: str, storage: str, *threads: str, serde: Any = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, storage=storage, serde=serde)
        saver.setup()
        for thread_id in threads:
            say(chat_graph(saver), thread_id, *TURNS)


def _history(dsn: str, thread_id: str, storage: str = "delta") -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return history(chat_graph(PostgresSaver(conn, storage=storage)), thread_id)


def _types(dsn: str, thread_id: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return blob_types(conn, thread_id, "messages")


def test_to_official_makes_a_delta_thread_readable_by_the_official_saver(dsn: str) -> None:
    _write(dsn, "delta", "t")
    before = _history(dsn, "t")
    result = parsed(invoke("convert-storage", "--dsn", dsn, "--to", "official", "--json"))
    assert (result["threads"], result["rows_skipped"]) == (1, 0)
    assert set(_types(dsn, "t")) == {"msgpack"}
    assert _history(dsn, "t", storage="official") == before
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        official = chat_graph(OfficialSaver(conn))  # type: ignore[arg-type]
        assert history(official, "t") == before


def test_to_delta_stores_an_official_thread_as_deltas_with_the_same_history(dsn: str) -> None:
    _write(dsn, "official", "t")
    before = _history(dsn, "t", storage="official")
    result = parsed(invoke("convert-storage", "--dsn", dsn, "--to", "delta", "--json"))
    assert result["rows_converted"] > 0
    types = _types(dsn, "t")
    assert types[0] == "msgpack"
    assert types.count("delta") > types.count("msgpack")
    assert _history(dsn, "t") == before


def test_a_thread_converted_both_ways_reads_as_before(dsn: str) -> None:
    _write(dsn, "official", "t")
    before = _history(dsn, "t", storage="official")
    invoke("convert-storage", "--dsn", dsn, "--to", "delta")
    invoke("convert-storage", "--dsn", dsn, "--to", "official")
    assert _history(dsn, "t", storage="official") == before


def test_a_second_run_finds_nothing_left_to_convert(dsn: str) -> None:
    _write(dsn, "official", "a", "b", "c")
    first = parsed(
        invoke("convert-storage", "--dsn", dsn, "--to", "delta", "--batch", "2", "--json")
    )
    again = parsed(invoke("convert-storage", "--dsn", dsn, "--to", "delta", "--json"))
    assert (first["threads"], again["rows_converted"]) == (3, 0)


def test_after_resumes_past_the_threads_already_done(dsn: str) -> None:
    _write(dsn, "delta", "a", "b", "c")
    result = parsed(
        invoke("convert-storage", "--dsn", dsn, "--to", "official", "--after", "a", "--json")
    )
    assert (result["threads"], result["last_thread"]) == (2, "c")
    assert "delta" in _types(dsn, "a")
    assert "delta" not in _types(dsn, "b") + _types(dsn, "c")


def test_dry_run_changes_nothing(dsn: str) -> None:
    _write(dsn, "delta", "t")
    before = _types(dsn, "t")
    result = parsed(
        invoke("convert-storage", "--dsn", dsn, "--to", "official", "--dry-run", "--json")
    )
    assert result["rows_converted"] > 0
    assert _types(dsn, "t") == before


def test_values_written_through_another_serializer_are_left_and_reported(dsn: str) -> None:
    _write(dsn, "delta", "t", serde=CompressingSerializer(threshold=1))
    result = invoke("convert-storage", "--dsn", dsn, "--to", "official")
    assert result.exit_code == 1
    assert "left as they are" in result.output
    with psycopg.connect(dsn, autocommit=True) as conn:
        reader = PostgresSaver(conn, serde=CompressingSerializer(), storage="delta")
        assert reader.get_tuple(cfg("t")) is not None
