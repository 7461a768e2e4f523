"""Building the text of the statements the repository modules keep as constants."""

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def listed(columns: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column for column in columns)


def parameters(count: int) -> str:
    """`$1, $2, ...` for one row of `count` values."""
    return ", ".join(f"${number}" for number in range(1, count + 1))


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """An insert of one row of these columns, in this order."""
    return f"INSERT INTO {table} ({listed(columns)}) VALUES ({parameters(len(columns))})"


def insert_rows_sql(
    table: sa.Table, columns: Sequence[str], *, numbered_after_last: str | None = None
) -> str:
    """An insert of any number of rows of these columns in one statement, the rows given as
    one array parameter per column (`column_arrays`): a batch's rows cost one round trip and one
    execution instead of one each. Array and JSON columns travel as text and are cast back.
    `numbered_after_last`: a column whose given values (1, 2, ...) count on from the largest
    the table holds (the caller holds the lock that keeps it so)."""
    arrays, selected = [], []
    for number, name in enumerate(columns, start=1):
        column = table.c[name]
        type_name = column.type.compile(dialect=postgresql.dialect())
        if _travels_as_text(column):
            arrays.append(f"${number}::text[]")
            selected.append(f"{name}::{type_name}")
        else:
            arrays.append(f"${number}::{type_name}[]")
            selected.append(name)
        if name == numbered_after_last:
            selected[-1] = f"(SELECT coalesce(max({name}), 0) FROM {table.fullname}) + {name}"
    return (
        f"INSERT INTO {table.fullname} ({listed(columns)}) "
        f"SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(arrays)}) AS given ({listed(columns)})"
    )


def column_arrays(
    table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> list[list[Any]]:
    """The parameters of `insert_rows_sql`: rows (values in `columns`' order) turned into one
    list per column, array values as array literals."""
    arrays: list[list[Any]] = [[] for _ in columns]
    literal = [isinstance(table.c[name].type, sa.ARRAY) for name in columns]
    for row in rows:
        for values, is_array, value in zip(arrays, literal, row, strict=True):
            values.append(array_literal(value) if is_array and value is not None else value)
    return arrays


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array, every element quoted."""
    quoted = (str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{q}"' for q in quoted) + "}"


def _travels_as_text(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.ARRAY | sa.JSON)


def upsert_newer_sql(table: str, columns: Sequence[str], *, keys: Sequence[str]) -> str:
    """An insert whose conflicting row is replaced only by a higher version (`applied_at`
    set anew); `table` is schema-qualified."""
    return insert_sql(table, columns) + newer_wins(table, columns, keys=keys)


def upsert_newer_rows_sql(table: sa.Table, columns: Sequence[str], *, keys: Sequence[str]) -> str:
    """`upsert_newer_sql` of any number of rows (`insert_rows_sql`); their keys must differ."""
    return insert_rows_sql(table, columns) + newer_wins(table.fullname, columns, keys=keys)


def newer_wins(table: str, columns: Sequence[str], *, keys: Sequence[str]) -> str:
    name = table.rsplit(".", 1)[-1]
    updates = [f"{c} = excluded.{c}" for c in columns if c not in keys]
    return (
        f" ON CONFLICT ({listed(keys)}) DO UPDATE SET "
        f"{', '.join(updates)}, applied_at = now() WHERE excluded.version > {name}.version"
    )
