"""Reporting's own schema: the latest status per (unit, period), the counts per (ancestor,
level, period) that summaries read, the change log the feed serves, and the disputes of
counting events as their newest step left them.

Every status row and change row carries its unit's path (the ancestor at each level), so the
counts can be moved when the registry moves a unit and the feed can filter by any root through
a (level code, seq) index. The status and count tables are built by factories because
`sanwu reporting rebuild` fills fresh copies and swaps them in.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.db import NAMING_CONVENTION
from shared.levels import Level

SCHEMA = "reporting"
CRITERIA = ("skip_level", "non_reception_site", "collective", "incident")
PATH_LEVELS: tuple[Level, ...] = tuple(Level)  # province, city, county, township, village
STATUS = "unit_status"
COUNTS = "level_counts"
CHANGES = "status_changes"
INDICATORS = "unit_indicators"
WARNINGS = "early_warnings"
WARNING_CHANGES = "warning_changes"
DISPUTES = "disputes"
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")

metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


def path_column(level: Level) -> str:
    return f"{level.value}_code"


def batches_column(criterion: str) -> str:
    return f"batches_{criterion}"


def people_column(criterion: str) -> str:
    return f"people_{criterion}"


FIGURE_COLUMNS = tuple(batches_column(c) for c in CRITERIA) + tuple(
    people_column(c) for c in CRITERIA
)


def _path_columns() -> list[sa.Column[str]]:
    return [sa.Column(path_column(level), sa.CHAR(12)) for level in PATH_LEVELS]


def _figure_columns() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
        for name in FIGURE_COLUMNS
    ]


def status_table(name: str = STATUS, meta: sa.MetaData = metadata) -> sa.Table:
    """The latest applied status per (unit, period); no row means three-no, version 0."""
    return sa.Table(
        name,
        meta,
        sa.Column("unit_code", sa.CHAR(12), primary_key=True),
        sa.Column("period", sa.Text, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        *_path_columns(),
        sa.Column("three_no", sa.Boolean, nullable=False),
        *_figure_columns(),
        sa.Column("counting_event_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def counts_table(name: str = COUNTS, meta: sa.MetaData = metadata) -> sa.Table:
    """Per (ancestor, period, level): units of that level under the ancestor (itself included)
    that are not three-no, and their counting batches and people per criterion."""
    return sa.Table(
        name,
        meta,
        sa.Column("ancestor_code", sa.CHAR(12), primary_key=True),
        sa.Column("period", sa.Text, primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("not_clean", sa.BigInteger, nullable=False, server_default="0"),
        *_figure_columns(),
    )


unit_status = status_table()
level_counts = counts_table()

# The feed: one row per applied change. `seq` is assigned as max + 1 while holding the apply
# lock, so sequence order is commit order (see repository.writes.ReadModelWrites.lock_writes).
status_changes = sa.Table(
    CHANGES,
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("unit_code", sa.CHAR(12), nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    *_path_columns(),
    sa.Column("three_no", sa.Boolean, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    *[
        sa.Index(f"ix_{CHANGES}_{path_column(level)}_seq", path_column(level), "seq")
        for level in PATH_LEVELS
    ],
)


def indicators_table(name: str = INDICATORS, meta: sa.MetaData = metadata) -> sa.Table:
    """The latest applied work-record indicators per (unit, period): the slots the unit's own
    meetings fell in, and its subtree's ratings per source (`ratings`) and in all (columns)."""
    return sa.Table(
        name,
        meta,
        sa.Column("unit_code", sa.CHAR(12), primary_key=True),
        sa.Column("period", sa.Text, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("meetings_held", ARRAY(sa.Date), nullable=False),
        sa.Column("ratings", JSONB, nullable=False),
        *[sa.Column(r, sa.BigInteger, nullable=False, server_default="0") for r in RATINGS],
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def _warning_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def warnings_table(name: str = WARNINGS, meta: sa.MetaData = metadata) -> sa.Table:
    """The latest applied version of every warning."""
    return sa.Table(
        name,
        meta,
        sa.Column("warning_id", UUID(as_uuid=True), primary_key=True),
        *_warning_columns(),
    )


unit_indicators = indicators_table()
early_warnings = warnings_table()

# The warnings feed: one row per applied version, numbered under the apply lock like
# status_changes, with the unit's path when applied so any root can filter it.
warning_changes = sa.Table(
    WARNING_CHANGES,
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("warning_id", UUID(as_uuid=True), nullable=False),
    *_path_columns(),
    *_warning_columns(),
    *[
        sa.Index(f"ix_{WARNING_CHANGES}_{path_column(level)}_seq", path_column(level), "seq")
        for level in PATH_LEVELS
    ],
    sa.Index(f"ix_{WARNING_CHANGES}_warning_id_version", "warning_id", "version"),
)

# Each dispute as its newest step on the disputes topic left it: the topic's own state, which a
# rebuild of the read model leaves alone. A status lists its counting events with a live one.
disputes = sa.Table(
    DISPUTES,
    metadata,
    sa.Column("dispute_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False),
    sa.Column("unit_code", sa.CHAR(12), nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column(
        "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index(f"ix_{DISPUTES}_event_id", "event_id"),
)
