"""The run history on SQL: one column of entries, newest first, one JSON text a line, rewritten
by the commit's own ``UPDATE`` (no read first), and the count of settled runs beside it.

The new history is the new entry, a newline, then the old history, cut after ``size`` lines, in
SQL: ``SUBSTRING_INDEX`` on MySQL/MariaDB, a POSIX regular expression on PostgreSQL, and on SQLite
(no such function) :func:`keep_lines`, which the store registers on each connection as
:data:`SQLITE_FUNCTION`. A JSON text holds no raw newline, so a line is one entry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, case, func, literal

#: The SQLite function that :func:`keep_lines` is registered as.
SQLITE_FUNCTION = "pyncette_keep_lines"


def keep_lines(text: str | None, size: int) -> str | None:
    """The first ``size`` lines of ``text`` (SQLite's :data:`SQLITE_FUNCTION`)."""
    if text is None:
        return None
    return "\n".join(text.split("\n")[: int(size)])


def cut_value(dialect: str, size: int) -> Any:
    """The value of the ``cut`` operand of :func:`history_after` that keeps ``size`` entries:
    a pattern on PostgreSQL, the line count elsewhere."""
    if dialect == "postgresql":
        return f"^[^\\n]*(?:\\n[^\\n]*){{0,{size - 1}}}"
    return size


def history_after(
    dialect: str, history: ColumnElement[Any], entry: ColumnElement[Any], cut: ColumnElement[Any]
) -> ColumnElement[Any]:
    """The value of the history column once ``entry`` is added to it and it is cut to the
    entries that ``cut`` (see :func:`cut_value`) keeps."""
    joined = case(
        (history.is_(None), entry),
        else_=entry.concat(literal("\n", Text)).concat(history),
    )
    if dialect == "postgresql":
        return func.substring(joined, cut, type_=Text)
    if dialect in {"mysql", "mariadb"}:
        return func.substring_index(joined, literal("\n", Text), cut, type_=Text)
    return getattr(func, SQLITE_FUNCTION)(joined, cut, type_=Text)  # type: ignore[no-any-return]
