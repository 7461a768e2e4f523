"""Per (ancestor, period, level): the units that are not three-no and their counts, which the
projection adds to and summaries read."""

from collections.abc import Collection, Mapping

from services.reporting.models import FIGURE_COLUMNS, level_counts
from services.reporting.readmodel import CountKey, Figures
from services.reporting.repository.statements import column_arrays, insert_rows_sql, listed
from shared.levels import Level
from shared.repository import Repository

TABLE = level_counts.fullname
KEYS = ("ancestor_code", "period", "level")
ADDED = ("not_clean", *FIGURE_COLUMNS)
COUNTS_SQL = f"SELECT * FROM {TABLE} WHERE period = $1 AND ancestor_code = ANY($2::bpchar[])"
ADD_COUNTS_SQL = (
    f"{insert_rows_sql(level_counts, (*KEYS, *ADDED))} ON CONFLICT ({listed(KEYS)}) DO UPDATE SET "
    + ", ".join(f"{c} = {level_counts.name}.{c} + excluded.{c}" for c in ADDED)
)


class CountRepository(Repository):
    async def add_counts(self, deltas: Mapping[CountKey, Figures]) -> None:
        """In the projection's session, under the apply lock."""
        if not deltas:
            return
        rows = []
        for (code, period, level), figures in sorted(deltas.items()):
            columns = figures.columns()
            rows.append([code, period, level.value, *(columns[c] for c in ADDED)])
        await self.connection.execute(
            ADD_COUNTS_SQL, *column_arrays(level_counts, (*KEYS, *ADDED), rows)
        )

    async def counts(self, period: str, ancestor_codes: Collection[str]) -> dict[CountKey, Figures]:
        rows = await self.connection.fetch(COUNTS_SQL, period, list(ancestor_codes))
        return {
            (r["ancestor_code"], r["period"], Level(r["level"])): Figures.from_row(r) for r in rows
        }
