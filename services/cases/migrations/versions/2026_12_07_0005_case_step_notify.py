"""cases: a notification whenever case steps commit, so that every process of the service
knows its kept case rates are out of date without asking the database on each read

Revision ID: 0005_cases
Revises: 0004_cases
Create Date: 2026-12-07
"""

from alembic import op

revision = "0005_cases"
down_revision = "0004_cases"
branch_labels = None
depends_on = None

CHANNEL = "cases_case_steps"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION cases.notify_case_steps() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER case_step_notify AFTER INSERT ON cases.case_step
        FOR EACH STATEMENT EXECUTE FUNCTION cases.notify_case_steps()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER case_step_notify ON cases.case_step")
    op.execute("DROP FUNCTION cases.notify_case_steps()")
