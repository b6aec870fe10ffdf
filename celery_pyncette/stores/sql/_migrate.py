"""Creating the schema of a namespace, and bringing tables made by earlier versions up to date.

Both steps are idempotent and safe to run from several processes at once: a step another process
made first fails ("already exists"), and the caller runs the whole pass again, which then finds it
done. Columns added since the first release (the quarantine marker, the strike reason) are added
to an existing table with ``ALTER TABLE ... ADD COLUMN``: nullable, without a default, so no
server rewrites the table.
"""

from __future__ import annotations

from sqlalchemy import Column, Table, inspect, text
from sqlalchemy.engine import Connection, Inspector
from sqlalchemy.schema import CreateColumn

from celery_pyncette.errors import StoreError
from celery_pyncette.stores.sql._dialects import Dialect
from celery_pyncette.stores.sql._schema import Schema


def create_schema(conn: Connection, schema: Schema, dialect: Dialect) -> None:
    """Create missing tables, add missing columns, (re)build missing or outdated indexes."""
    inspector = inspect(conn)
    for table in schema.tables:
        if not inspector.has_table(table.name):
            table.create(conn)
            continue
        for column in missing_columns(inspector, table):
            _add_column(conn, table, column)
        existing = {index["name"]: index for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            found = existing.get(str(index.name))
            if found is not None and dialect.index_is_current(index, found):
                continue
            if found is not None:
                index.drop(conn)
            index.create(conn)


def check_schema(conn: Connection, schema: Schema, label: str) -> None:
    """Raise :class:`StoreError` naming the tables or columns that are missing."""
    inspector = inspect(conn)
    missing = [t.name for t in schema.tables if not inspector.has_table(t.name)]
    if missing:
        raise StoreError(
            f"{label}: table(s) {', '.join(missing)} do not exist and "
            "skip_table_create is set; create them with `celery pyncette migrate`"
        )
    columns = [
        f"{table.name}.{column.name}"
        for table in schema.tables
        for column in missing_columns(inspector, table)
    ]
    if columns:
        raise StoreError(
            f"{label}: column(s) {', '.join(columns)} do not exist (the tables were made by an "
            "earlier version) and skip_table_create is set; add them with "
            "`celery pyncette migrate`"
        )


def missing_columns(inspector: Inspector, table: Table) -> list[Column[object]]:
    """The columns of ``table`` that the server's table lacks."""
    present = {column["name"] for column in inspector.get_columns(table.name)}
    return [column for column in table.columns if column.name not in present]


def _add_column(conn: Connection, table: Table, column: Column[object]) -> None:
    name = conn.dialect.identifier_preparer.format_table(table)
    definition = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {name} ADD COLUMN {definition}"))
