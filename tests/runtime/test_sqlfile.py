"""The named-statement file format: what a `.sql` file may hold and how it renders."""

from __future__ import annotations

import pytest
from psycopg import sql

from checkpoint_pg._runtime.sqlfile import SqlFileError, parse

FILE = """\
-- Leading comments before the first block are allowed.

-- name: delete_thread
-- Deletes one thread's checkpoints.
DELETE FROM {checkpoints} WHERE thread_id = %(thread_id)s;

-- name: empty_metadata
SELECT '{}'::jsonb AS metadata FROM {checkpoints}
"""


def test_each_block_is_a_statement_with_its_doc_and_no_trailing_semicolon() -> None:
    statement = parse(FILE, "f.sql")["delete_thread"]
    assert statement.doc == "Deletes one thread's checkpoints."
    assert statement.text == "DELETE FROM {checkpoints} WHERE thread_id = %(thread_id)s"


def test_placeholders_render_as_quoted_identifiers() -> None:
    text = parse(FILE, "f.sql").render("delete_thread", checkpoints=sql.Identifier("s", "cp"))
    assert text == 'DELETE FROM "s"."cp" WHERE thread_id = %(thread_id)s'


def test_braces_that_are_not_placeholders_stay_literal() -> None:
    text = parse(FILE, "f.sql").render("empty_metadata", checkpoints=sql.Identifier("cp"))
    assert text == """SELECT '{}'::jsonb AS metadata FROM "cp\""""


def test_a_missing_part_is_an_error_naming_it() -> None:
    with pytest.raises(SqlFileError, match="checkpoints"):
        parse(FILE, "f.sql").render("delete_thread")


def test_an_unknown_statement_is_an_error_naming_the_file() -> None:
    with pytest.raises(SqlFileError, match=r"f\.sql has no statement named 'nope'"):
        parse(FILE, "f.sql")["nope"]


def test_a_name_defined_twice_is_rejected() -> None:
    with pytest.raises(SqlFileError, match="defined twice"):
        parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "f.sql")


def test_sql_before_the_first_name_is_rejected() -> None:
    with pytest.raises(SqlFileError, match="before the first"):
        parse("SELECT 1;\n-- name: a\nSELECT 2;\n", "f.sql")


def test_an_empty_statement_is_rejected() -> None:
    with pytest.raises(SqlFileError, match="empty"):
        parse("-- name: a\n-- only a comment\n", "f.sql")
