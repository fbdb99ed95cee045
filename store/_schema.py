"""Create or migrate the store's tables: one transaction, serialised by an advisory lock.

The official numbering is kept: `store_migrations` and `vector_migrations` get exactly the rows
the official store writes (the ANN index migration is skipped, unrecorded, for a flat index, as
there). This project's additions are recorded in `store_pg_migrations`.
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from checkpoint_pg._runtime.citus import ShardedTable, distribute
from checkpoint_pg._runtime.protocol import Query, Steps
from store._index import VectorIndex
from store._sql import (
    OFFICIAL_MIGRATIONS,
    OWN_MIGRATIONS,
    VECTOR_NAMES,
    migrations_file,
    names_for,
    number_body,
    number_case,
    render_migration,
)
from store._text import TextIndex
from store.errors import InvalidIndexConfigError, InvalidValueError, VectorSupportMissingError


def _vector_migrations(schema: str | None, index: VectorIndex) -> list[str | None]:
    pieces = index.ddl_pieces()
    extension, table, ann = (migrations_file()[n] for n in VECTOR_NAMES)
    return [
        render_migration(extension, schema),
        render_migration(table, schema, **pieces),
        None if index.kind == "flat" else render_migration(ann, schema, **pieces),
    ]


def _apply(table: sql.Identifier, migrations: list[str | None]) -> Steps[int]:
    """Apply `migrations` from the first one `table` does not record; record each."""
    file = migrations_file()
    yield Query(file.render("version_table", table=table))
    rows = yield Query(file.render("version_current", table=table), fetch=True)
    current = rows[0][0] if rows and rows[0][0] is not None else -1
    record = file.render("version_record", table=table)
    for version in range(current + 1, len(migrations)):
        statement = migrations[version]
        if statement is None:
            continue  # not applicable to this configuration, and not recorded
        yield Query(statement)
        yield Query(record, {"version": version})
    return len(migrations) - 1


def range_index_ddl(schema: str | None, field: str) -> str:
    """An expression index serving range filters (`$gt`…) on the dotted `field` path."""
    parts = field.split(".")
    if not field or not all(parts) or any("\x00" in p for p in parts):
        raise InvalidValueError(f"range index field {field!r} must be a dotted path of names")
    path: sql.Composable = sql.SQL("value")
    for part in parts:
        path = sql.SQL("({} -> {})").format(path, sql.Literal(part))
    digest = hashlib.sha1(field.encode(), usedforsecurity=False).hexdigest()[:12]
    names = names_for(schema)
    return migrations_file().render(
        "range_index",
        index=sql.Identifier(f"store_range_{digest}_idx"),
        store=names.store,
        number=names.number,
        path=path,
    )


def _text_index(schema: str | None, text: TextIndex) -> Steps[None]:
    """The full-text column and index of `text`'s configuration, once its language is known
    to exist."""
    file = migrations_file()
    config_schema, _, config_name = text.language.rpartition(".")
    found = yield Query(
        file.render("text_config_exists"),
        {"name": config_name, "schema": config_schema or None},
        fetch=True,
    )
    if not found:
        raise InvalidIndexConfigError(
            f"index['text']['language'] is {text.language!r}, which is not a text search "
            "configuration of this database (see \\dF in psql)"
        )
    names = names_for(schema)
    column = sql.Identifier(text.column_name)
    document = text.document(sql.SQL("value"))
    yield Query(file.render("text_column", store=names.store, column=column, document=document))
    index = sql.Identifier(text.index_name)
    yield Query(file.render("text_index", index=index, store=names.store, column=column))


def migrate(
    schema: str | None,
    index: VectorIndex | None,
    range_fields: tuple[str, ...] = (),
    *,
    distributed: bool = False,
    text: TextIndex | None = None,
) -> Steps[None]:
    """Apply every migration the database lacks, and create the configured range indexes.
    With `distributed`, the tables are then sharded on Citus (see `shard`)."""
    names = names_for(schema)
    file = migrations_file()
    yield Query(file.render("setup_lock"), {"lock": f"store.setup:{schema or ''}"})
    if schema is not None:
        yield Query(file.render("create_schema", schema=names.schema))
    official = [render_migration(m, schema) for m in OFFICIAL_MIGRATIONS]
    yield from _apply(names.migrations, list(official))
    if index is not None:
        rows = yield Query(file.render("vector_available"), fetch=True)
        if not rows:
            raise VectorSupportMissingError(
                "semantic search (index=...) needs the pgvector extension, which this "
                "PostgreSQL server does not have: install pgvector, or create the store "
                "without index="
            )
        yield from _apply(names.vector_migrations, _vector_migrations(schema, index))
    if schema is None:
        rows = yield Query(file.render("current_schema"), fetch=True)
        home = str(rows[0][0])
    else:
        home = schema
    extra = {"number_body": number_body(home), "number_case": number_case()}
    own = [render_migration(m, schema, **extra) for m in OWN_MIGRATIONS]
    yield from _apply(names.own_migrations, list(own))
    for field in range_fields:
        yield Query(range_index_ddl(schema, field))
    if text is not None:
        yield from _text_index(schema, text)
    if distributed:
        yield from shard(schema)


def shard(schema: str | None) -> Steps[None]:
    """Distribute the store on Citus by ``prefix`` (docs/scaling.md): every item of one
    namespace on one shard, its vectors (when the table exists) co-located with it, so a get,
    put or delete in one namespace runs on one shard. The migration tables become reference
    tables. Already so: nothing changes."""
    names = names_for(schema)

    def name(table: sql.Identifier) -> str:
        return table.as_string(None)

    store, vectors = name(names.store), name(names.vectors)
    rows = yield Query(
        migrations_file().render("tables_present"),
        {"names": [vectors, name(names.vector_migrations)]},
        fetch=True,
    )
    present = {str(row[0]) for row in rows}
    sharded = [ShardedTable(store, "prefix")]
    if vectors in present:
        sharded.append(ShardedTable(vectors, "prefix", colocate=store))
    references = [name(names.migrations), name(names.own_migrations)]
    references += [t for t in [name(names.vector_migrations)] if t in present]
    yield from distribute(sharded, references)


__all__ = ["migrate", "shard"]
