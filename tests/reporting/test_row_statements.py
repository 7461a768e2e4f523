"""A batch's rows written in one statement (`insert_rows_sql`) arrive as they were given:
array and JSON columns, which travel as text, included."""

import json
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from services.reporting.repository.statements import column_arrays, insert_rows_sql
from shared.db import Database

metadata = sa.MetaData()
given = sa.Table(
    "row_statement_check",
    metadata,
    sa.Column("code", sa.CHAR(12)),
    sa.Column("names", sa.ARRAY(sa.Text)),
    sa.Column("detail", JSONB),
    sa.Column("version", sa.BigInteger),
)
COLUMNS = ("code", "names", "detail", "version")


async def test_rows_keep_their_arrays_nulls_and_json(db: Database) -> None:
    tricky = ['a "quoted" name', "back\\slash", "comma, brace } { and NULL", ""]
    ids = [uuid.uuid4(), uuid.uuid4()]
    rows = [
        ("360101103211", tricky, json.dumps({"recent": 3, "名": "村"}), 1),
        ("360101103212", [], json.dumps({}), 2),
        ("360101103213", None, None, None),
        ("360101103214", ids, json.dumps([1, 2]), 4),
    ]
    async with db.connection() as connection, connection.transaction():
        await connection.execute(
            "CREATE TEMP TABLE row_statement_check "
            "(code char(12), names text[], detail jsonb, version bigint) ON COMMIT DROP"
        )
        await connection.execute(
            insert_rows_sql(given, COLUMNS), *column_arrays(given, COLUMNS, rows)
        )
        stored = await connection.fetch(
            "SELECT code, names, detail::text AS detail, version "
            "FROM row_statement_check ORDER BY code"
        )
    assert [tuple(r) for r in stored] == [
        ("360101103211", tricky, '{"名": "村", "recent": 3}', 1),
        ("360101103212", [], "{}", 2),
        ("360101103213", None, None, None),
        ("360101103214", [str(i) for i in ids], "[1, 2]", 4),
    ]
