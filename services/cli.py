"""`sanwu`: the operator's command line. Each service's commands are a Typer sub-app in its
`commands.py`, the commands on shared parts are in `services/commands.py`; this module only
builds the root app and registers them. Helpers every command uses are in `shared/cli.py`."""

from services.applications.commands import applications_app
from services.audit.commands import audit_app
from services.cases.commands import calendar_app
from services.commands import bodies_app, db_app, keys_app, topics_app, units_app
from services.evaluation.commands import evaluation_app
from services.intake.commands import events_app, intake_app
from services.reporting.commands import reporting_app
from services.webhooks.commands import webhooks_app
from shared import logging as sanwu_logging
from shared.cli import CommandApp
from shared.config import LogSettings

app = CommandApp(
    help="Operate sanwu: the three-no petition-work campaign backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(units_app, name="units")
app.add_typer(bodies_app, name="bodies")
app.add_typer(keys_app, name="keys")
app.add_typer(topics_app, name="topics")
app.add_typer(intake_app, name="intake")
app.add_typer(events_app, name="events")
app.add_typer(evaluation_app, name="evaluation")
app.add_typer(reporting_app, name="reporting")
app.add_typer(applications_app, name="applications")
app.add_typer(audit_app, name="audit")
app.add_typer(calendar_app, name="calendar")
app.add_typer(webhooks_app, name="webhooks")


@app.callback()
def main() -> None:
    """Logs go to stderr, so a command's own output (a new key) stands alone on stdout."""
    sanwu_logging.configure(LogSettings().log_level, json=False)
