"""Building the text of the statements the repository modules keep as constants."""

from collections.abc import Sequence


def listed(columns: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column for column in columns)


def parameters(count: int) -> str:
    """`$1, $2, ...` for one row of `count` values."""
    return ", ".join(f"${number}" for number in range(1, count + 1))


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """An insert of one row of these columns, in this order."""
    return f"INSERT INTO {table} ({listed(columns)}) VALUES ({parameters(len(columns))})"


def upsert_newer_sql(table: str, columns: Sequence[str], *, keys: Sequence[str]) -> str:
    """An insert whose conflicting row is replaced only by a higher version (`applied_at`
    set anew); `table` is schema-qualified."""
    name = table.rsplit(".", 1)[-1]
    updates = [f"{c} = excluded.{c}" for c in columns if c not in keys]
    return (
        f"{insert_sql(table, columns)} ON CONFLICT ({listed(keys)}) DO UPDATE SET "
        f"{', '.join(updates)}, applied_at = now() WHERE excluded.version > {name}.version"
    )
