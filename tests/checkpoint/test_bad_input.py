"""Bad input: a typed error that names the field, and the database exactly as it was."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from checkpoint_pg import InvalidConfigError, InvalidMetadataError, PostgresSaver
from tests.checkpoint.helpers import checkpoint, config, count_rows


@pytest.fixture
def saver(sync_saver: PostgresSaver) -> Iterator[PostgresSaver]:
    return sync_saver


def _put(saver: PostgresSaver, cfg: Any, metadata: Any = None, values: Any = None) -> Any:
    cp = checkpoint(values or {"doc": {"a": 1}})
    return saver.put(cfg, cp, metadata or {}, cp["channel_versions"])


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({}, r"config\['configurable'\] is missing"),
        ({"configurable": {}}, r"\['thread_id'\] is required"),
        ({"configurable": {"thread_id": ["a"]}}, r"\['thread_id'\] must be a string, not list"),
        ({"configurable": {"thread_id": "a\x00b"}}, r"\['thread_id'\] contains a NUL byte"),
        ({"configurable": {"thread_id": "x" * 5000}}, r"\['thread_id'\] is 5000 bytes long"),
        (
            {"configurable": {"thread_id": "t", "checkpoint_ns": "a\x00"}},
            r"\['checkpoint_ns'\] contains a NUL byte",
        ),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(
    saver: PostgresSaver, dsn: str, cfg: Any, message: str
) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        _put(saver, cfg)
    assert count_rows(dsn, "checkpoints") == 0
    assert count_rows(dsn, "checkpoint_blobs") == 0


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"nested": {"k": "v\x00"}}, "NUL character"),
        ({"key\x00": 1}, "NUL character"),
        ({"obj": object()}, "not JSON-serialisable"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    saver: PostgresSaver, dsn: str, metadata: Any, message: str
) -> None:
    with pytest.raises(InvalidMetadataError, match=message):
        _put(saver, config("t"), metadata)
    assert count_rows(dsn, "checkpoint_blobs") == 0


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"nan": float("nan")}, "not JSON-serialisable"),
        ({"when": datetime(2026, 1, 1, tzinfo=timezone.utc)}, "not JSON-serialisable"),
        ({"raw": b"bytes"}, "not JSON-serialisable"),
    ],
)
def test_metadata_json_refuses_what_it_refused_before_orjson_wrote_it(
    saver: PostgresSaver, dsn: str, metadata: Any, message: str
) -> None:
    with pytest.raises(InvalidMetadataError, match=message):
        _put(saver, config("t"), metadata)
    assert count_rows(dsn, "checkpoints") == 0


# With a None in it, orjson's text holds `null` and `json` writes the metadata instead.
@pytest.mark.parametrize("extra", [{}, {"nothing": None}])
def test_a_uuid_or_an_enum_in_metadata_is_stored_as_its_text_or_value(
    saver: PostgresSaver, extra: dict[str, Any]
) -> None:
    run = uuid.UUID("12345678-1234-5678-1234-567812345678")
    stored = _put(saver, config("t"), {"run": run, "color": _Color.RED, **extra})
    got = saver.get_tuple(stored)
    assert got is not None
    assert {k: got.metadata[k] for k in ("run", "color", *extra)} == {
        "run": str(run),
        "color": 1,
        **extra,
    }


class _Color(enum.Enum):
    RED = 1


def test_nul_in_a_top_level_metadata_string_is_stripped_as_langgraph_does(
    saver: PostgresSaver,
) -> None:
    stored = _put(saver, config("t"), {"source": "in\x00put"})
    got = saver.get_tuple(stored)
    assert got is not None
    assert got.metadata["source"] == "input"


def test_writes_without_a_checkpoint_id_are_refused(saver: PostgresSaver) -> None:
    with pytest.raises(InvalidConfigError, match="checkpoint_id'] is required"):
        saver.put_writes(config("t"), [("a", 1)], "task")


def test_a_write_with_a_nul_in_its_task_id_is_refused(saver: PostgresSaver, dsn: str) -> None:
    stored = _put(saver, config("t"))
    with pytest.raises(InvalidConfigError, match="task_id contains a NUL byte"):
        saver.put_writes(stored, [("a", 1)], "task\x00")
    assert count_rows(dsn, "checkpoint_writes") == 0


@pytest.mark.nocitus(
    "makes the database fail with a trigger; Citus refuses triggers on distributed tables"
)
def test_a_put_that_fails_in_the_database_leaves_no_blobs_behind(
    saver: PostgresSaver, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"""
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON checkpoints"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    with pytest.raises(psycopg.errors.RaiseException, match="refused by test"):
        _put(saver, config("t"), values={"doc": {"big": "x" * 1000}, "other": [1, 2]})
    assert count_rows(dsn, "checkpoint_blobs") == 0


def test_prune_refuses_a_single_string_instead_of_a_list(saver: PostgresSaver) -> None:
    with pytest.raises(InvalidConfigError, match="list of thread ids"):
        saver.prune("thread-1")  # type: ignore[arg-type]
