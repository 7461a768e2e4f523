"""`sanwu webhooks ...`: make and send the deliveries without serving the API."""

import typer

webhooks_app = typer.Typer(no_args_is_help=True)


@webhooks_app.callback()
def webhooks() -> None:
    """Webhook deliveries (docs/webhooks.md)."""


@webhooks_app.command("consume")
def consume() -> None:
    """Read the topics into deliveries and send them, without serving the subscriptions' API
    (until interrupted)."""
    from services.webhooks.config import get_settings
    from services.webhooks.main import blueprint
    from shared import service_commands

    settings = get_settings().model_copy(
        update={"webhooks_run_consumer": True, "webhooks_run_dispatcher": True}
    )
    service_commands.consume(blueprint(settings), settings)
