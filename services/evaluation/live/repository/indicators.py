"""The SQL of the indicators: each (unit, period)'s meeting slots and rating counts aggregated
from the work records' effect rows (those without criteria), like statuses from the others."""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.evaluation.live.indicators import RATINGS, SCHEMA_VERSION, SOURCES
from services.evaluation.models import RATING_COLUMNS
from services.evaluation.records import INDICATOR_COLUMNS, INDICATOR_CONTENT, StatusWindow
from services.evaluation.schema_repository import SchemaRepository, by_field, listed

RECOMPUTE_INDICATORS = """
    WITH k AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                             $4::timestamptz[]) AS k(unit_code, period, starts_at, ends_at)
    ), fresh AS (
        SELECT k.unit_code, k.period, {aggregates}
        FROM k LEFT JOIN {schema}.effect f
            ON f.unit_code = k.unit_code AND f.criteria = 0
            AND f.occurred_at >= k.starts_at
            AND (k.ends_at IS NULL OR f.occurred_at < k.ends_at)
        GROUP BY k.unit_code, k.period
    ), changed AS (
        SELECT n.*, coalesce(i.version, 0) + 1 AS version
        FROM fresh n LEFT JOIN {schema}.indicators i
            ON i.unit_code = n.unit_code AND i.period = n.period
        WHERE CASE WHEN i.unit_code IS NULL THEN {any_content} ELSE {differs} END
    )
    INSERT INTO {schema}.indicators AS i ({columns})
    SELECT unit_code, period, {content}, $5, version
    FROM changed
    ON CONFLICT (unit_code, period) DO UPDATE SET
        {updated}
    RETURNING {returned}
"""
INDICATORS = "SELECT {columns} FROM {schema}.indicators ORDER BY unit_code, period"


def indicator_aggregates(alias: str) -> str:
    """The indicator content of a (unit, period) from its work records' effect rows `alias`."""
    columns = [
        f"coalesce(array_agg(DISTINCT {alias}.slot ORDER BY {alias}.slot) "
        f"FILTER (WHERE {alias}.slot IS NOT NULL), '{{}}') AS meetings_held"
    ]
    for name, (source, rating) in RATING_COLUMNS.items():
        columns.append(
            f"count({alias}.event_id) FILTER (WHERE {alias}.source = '{source}' "
            f"AND {alias}.rating = '{rating}') AS {name}"
        )
    return ",\n".join(columns)


def any_content(alias: str) -> str:
    """Whether the indicators `alias` hold anything (a meeting or a rating)."""
    ratings = " + ".join(f"{alias}.{name}" for name in RATING_COLUMNS)
    return f"(cardinality({alias}.meetings_held) > 0 OR {ratings} > 0)"


def indicator_json(alias: str) -> str:
    """The SQL of `live.indicators.indicator_message`'s value from an `indicators` row
    `alias`, for a rebuild to publish every changed row in one statement (a test reads both
    back as the model)."""
    ratings = ", ".join(
        f"'{source}', json_build_object("
        + ", ".join(f"'{rating}', {alias}.{source}_{rating}" for rating in RATINGS)
        + ")"
        for source in SOURCES
    )
    return (
        f"json_build_object('schema_version', {SCHEMA_VERSION}, "
        f"'unit_code', {alias}.unit_code, 'period', {alias}.period, "
        f"'meetings_held', {alias}.meetings_held, 'ratings', json_build_object({ratings}), "
        f"'changed_at', {alias}.changed_at, 'version', {alias}.version)"
    )


class IndicatorRepository(SchemaRepository):
    async def recompute_indicators(
        self, windows: Sequence[StatusWindow], *, now: datetime
    ) -> list[asyncpg.Record]:
        """Recompute the indicators from their effects; store and return those that changed
        (version + 1, changed_at = now). A pair that never had a work record stays without a
        row. Call with the counties locked."""
        if not windows:
            return []
        differs = (
            f"({listed(INDICATOR_CONTENT, 'i')}) IS DISTINCT FROM "
            f"({listed(INDICATOR_CONTENT, 'n')})"
        )
        return await self.connection.fetch(
            RECOMPUTE_INDICATORS.format(
                schema=self.schema,
                aggregates=indicator_aggregates("f"),
                any_content=any_content("n"),
                differs=differs,
                columns=listed(INDICATOR_COLUMNS),
                content=listed(INDICATOR_CONTENT),
                updated=", ".join(f"{c} = excluded.{c}" for c in INDICATOR_COLUMNS[2:]),
                returned=listed(INDICATOR_COLUMNS, "i"),
            ),
            *by_field(windows, "unit_code", "period", "starts_at", "ends_at"),
            now,
        )

    async def indicators(self) -> list[asyncpg.Record]:
        return await self.connection.fetch(
            INDICATORS.format(schema=self.schema, columns=listed(INDICATOR_COLUMNS))
        )
