"""`sanwu`: the operator's command line (migrations, registry, keys, topics, workers)."""

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from services.evaluation.commands import evaluation_app
from services.migrations import migrate_all
from services.reporting.commands import reporting_app
from shared import kafka
from shared import logging as sanwu_logging
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import get_settings
from shared.db import Database
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import RegistryFileError, load_file

app = typer.Typer(
    help="Operate sanwu: the three-no petition-work campaign backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
units_app = typer.Typer(help="The unit registry (reference data).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
intake_app = typer.Typer(help="The intake service's workers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(units_app, name="units")
app.add_typer(keys_app, name="keys")
app.add_typer(topics_app, name="topics")
app.add_typer(intake_app, name="intake")
app.add_typer(evaluation_app, name="evaluation")
app.add_typer(reporting_app, name="reporting")


@app.callback()
def main() -> None:
    """Logs go to stderr, so a command's own output (a new key) stands alone on stdout."""
    settings = get_settings()
    sanwu_logging.configure(settings.log_level, json=False)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring every schema to the latest revision."""
    run(migrate_all(get_settings()))
    echo_err("database migrated")


@units_app.command("load")
def units_load(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load or update units from a CSV (code,name,level,parent_code); all or nothing."""

    async def load() -> None:
        settings = get_settings()
        await migrate_all(settings)
        db = Database.from_settings(settings, pool_size=1)
        try:
            async with db.engine.begin() as connection:
                report = await load_file(connection, path)
        finally:
            await db.dispose()
        echo_err(
            f"{path}: {report.read} units read, {report.added} added, {report.changed} changed, "
            f"{report.unchanged} unchanged; {report.moved} moved to another parent or level"
        )

    try:
        run(load())
    except RegistryFileError as exc:
        echo_err(f"{path}: rejected, nothing changed:\n{exc}")
        raise typer.Exit(1) from exc


@units_app.command("generate")
def units_generate(
    output: Annotated[Path | None, typer.Option(help="File to write; stdout if omitted")] = None,
    province: Annotated[str, typer.Option(help="Two-digit province code")] = "35",
    cities: int = 10,
    counties: int = 100,
    townships_per_county: int = 20,
    villages_per_township: int = 15,
) -> None:
    """Write a synthetic province registry as CSV (for tests and benchmarks)."""
    shape = ProvinceShape(province, cities, counties, townships_per_county, villages_per_township)
    if output is None:
        count = write_csv(generate(shape), sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = write_csv(generate(shape), handle)
    echo_err(f"{count} units generated")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="desk posts events, reader reads, admin does both")],
    scope: Annotated[
        str | None, typer.Option(help="Scope unit code (required but for admin)")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Who holds the key")] = None,
    expires: Annotated[datetime | None, typer.Option(help="Expiry (ISO date or time, UTC)")] = None,
) -> None:
    """Create a key and print it, alone on stdout. Only its hash is stored."""
    if scope is None and role != Role.admin:
        echo_err("--scope is required for desk and reader keys")
        raise typer.Exit(2)

    async def create() -> str:
        settings = get_settings()
        await migrate_all(settings)
        db = Database.from_settings(settings, pool_size=1)
        try:
            async with db.engine.begin() as connection:
                if scope is not None:
                    from shared.registry.cache import UnitRegistry

                    if await UnitRegistry(db.engine).get(scope) is None:
                        echo_err(f"unknown scope unit {scope}")
                        raise typer.Exit(2)
                return await access_service.create(
                    connection, role=role, scope_code=scope, label=label, expires_at=expires
                )
        finally:
            await db.dispose()

    typer.echo(run(create()))


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""

    async def list_() -> list[dict[str, object]]:
        db = Database.from_settings(get_settings(), pool_size=1)
        try:
            async with db.engine.begin() as connection:
                return await access_service.list_keys(connection)
        finally:
            await db.dispose()

    now = datetime.now(UTC)
    for key in run(list_()):
        expires_at = key["expires_at"]
        if key["revoked_at"]:
            state = "revoked"
        elif isinstance(expires_at, datetime) and expires_at <= now:
            state = "expired"
        else:
            state = "active"
        typer.echo(
            f"{key['key_id']}\t{key['role']}\t{key['scope_code'] or '*'}\t{state}\t"
            f"expires={key['expires_at'] or '-'}\t{key['label'] or ''}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after 'sanwu_'); refused at once from then on."""

    async def revoke() -> bool:
        db = Database.from_settings(get_settings(), pool_size=1)
        try:
            async with db.engine.begin() as connection:
                return await access_service.revoke(connection, key_id)
        finally:
            await db.dispose()

    if not run(revoke()):
        echo_err(f"no active key {key_id}")
        raise typer.Exit(1)
    echo_err(f"key {key_id} revoked")


@keys_app.command("audit")
def keys_audit(
    key: Annotated[str | None, typer.Option(help="Only this key id")] = None,
) -> None:
    """Who created and revoked keys, and when keys expired, oldest first (tab-separated: when,
    what, key id, role, scope, who)."""

    async def audit() -> list[dict[str, object]]:
        db = Database.from_settings(get_settings(), pool_size=1)
        try:
            async with db.engine.begin() as connection:
                return await access_service.audit(connection, key_id=key)
        finally:
            await db.dispose()

    for entry in run(audit()):
        at = entry["at"]
        typer.echo(
            f"{at.isoformat() if isinstance(at, datetime) else at}\t{entry['action']}\t"
            f"{entry['key_id']}\t{entry['role']}\t{entry['scope_code'] or '*'}\t{entry['actor']}"
        )


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create the petition-event, status and dead-letter topics if missing."""
    created = run(kafka.ensure_topics(get_settings()))
    echo_err(f"topics created: {', '.join(created)}" if created else "topics already exist")


@intake_app.command("relay")
def intake_relay() -> None:
    """Run the outbox relay on its own (the intake service also runs one by default)."""
    from services.intake.config import get_settings as intake_settings
    from services.intake.main import relay as intake_relay_for

    async def relay() -> None:
        settings = intake_settings()
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        db = Database.from_settings(settings, pool_size=2)
        try:
            await intake_relay_for(db, settings).run()
        finally:
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        run(relay())


@intake_app.command("purge-free-text")
def intake_purge_free_text() -> None:
    """Remove what people wrote (summary, reason, category, platform) from events accepted
    longer ago than SANWU_FREE_TEXT_RETENTION_DAYS; prints how many events lost it. Intake
    also does this at start and daily."""
    from services.intake.config import get_settings as intake_settings
    from services.intake.retention import purge_free_text

    async def purge() -> int:
        settings = intake_settings()
        db = Database.from_settings(settings, pool_size=1)
        try:
            return await purge_free_text(
                db,
                now=datetime.now(UTC),
                retention=timedelta(days=settings.free_text_retention_days),
            )
        finally:
            await db.dispose()

    typer.echo(run(purge()))
