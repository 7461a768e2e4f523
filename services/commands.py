"""`sanwu db|units|bodies|keys|topics ...`: commands on what the services share (the schemas, the
unit registry and the units' handling bodies, API keys, Kafka topics)."""

import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from services.migrations import migrate_all
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.asyncapi import asyncapi_document
from shared.cli import (
    COMMAND_WAIT_SECONDS,
    PROGRESS_OPTION,
    echo_err,
    progress_bar,
    require_database,
    run,
)
from shared.config import get_settings
from shared.db import Database
from shared.registry.bodies import BodiesLoaded, BodyRepository, load_bodies
from shared.registry.cache import UnitRegistry
from shared.registry.generator import ProvinceShape, generate, generate_nation, write_csv
from shared.registry.loader import RegistryFileError, load_file

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
units_app = typer.Typer(help="The unit registry (reference data).", no_args_is_help=True)
bodies_app = typer.Typer(
    help="The handling bodies of units (reference data).", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)

T = TypeVar("T")
ACTOR_OPTION = typer.Option(
    "--actor",
    help="Who does this, as the key audit records it (default: the operating-system account "
    "running sanwu; never LOGNAME or USER)",
)
# The levels that have a petition bureau (信访局).
BUREAU_LEVELS = ("county", "city", "province")


async def in_transaction(
    work: Callable[[Database, AsyncConnection], Awaitable[T]], *, migrated: bool = False
) -> T:
    """Runs `work` in one transaction on a database of its own, migrated first if asked."""
    settings = get_settings()
    await require_database()
    if migrated:
        await migrate_all(settings)
    db = Database.from_settings(settings, pool_size=1)
    try:
        async with db.engine.begin() as connection:
            return await work(db, connection)
    finally:
        await db.dispose()


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring every schema to the latest revision."""

    async def migrate() -> None:
        await require_database()
        await migrate_all(get_settings())

    run(migrate())
    echo_err("database migrated")


@units_app.command("load")
def units_load(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    progress: Annotated[bool | None, PROGRESS_OPTION] = None,
) -> None:
    """Load or update units from a CSV (code,name,level,parent_code); all or nothing."""
    with progress_bar("units", shown=progress) as on_progress:
        try:
            report = run(
                in_transaction(
                    lambda _, connection: load_file(connection, path, on_progress=on_progress),
                    migrated=True,
                )
            )
        except RegistryFileError as exc:
            echo_err(f"{path}: rejected, nothing changed:\n{exc}")
            raise typer.Exit(1) from exc
    echo_err(
        f"{path}: {report.read} units read, {report.added} added, {report.changed} changed, "
        f"{report.unchanged} unchanged; {report.moved} moved to another parent or level"
    )


@bodies_app.command("load")
def bodies_load(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load or update handling bodies from a CSV (unit_code,body,name); all or nothing."""

    async def load(_: Database, connection: AsyncConnection) -> BodiesLoaded:
        return await load_bodies(await BodyRepository.from_connection(connection), path)

    try:
        report = run(in_transaction(load, migrated=True))
    except RegistryFileError as exc:
        echo_err(f"{path}: rejected, nothing changed:\n{exc}")
        raise typer.Exit(1) from exc
    echo_err(
        f"{path}: {report.read} bodies read, {report.added} added, {report.changed} changed, "
        f"{report.unchanged} unchanged"
    )


class Scale(StrEnum):
    province = "province"
    national = "national"


@units_app.command("generate")
def units_generate(
    output: Annotated[Path | None, typer.Option(help="File to write; stdout if omitted")] = None,
    scale: Annotated[
        Scale,
        typer.Option(
            help="One province (shaped by the options below), or the nation: 31 provinces, "
            "about 2,800 counties, 40,000 townships and 600,000 villages"
        ),
    ] = Scale.province,
    province: Annotated[str, typer.Option(help="Two-digit province code")] = "35",
    cities: int = 10,
    counties: int = 100,
    townships_per_county: int = 20,
    villages_per_township: int = 15,
) -> None:
    """Write a synthetic registry as CSV (for tests and benchmarks)."""
    if scale is Scale.national:
        rows = generate_nation()
    else:
        shape = ProvinceShape(
            province, cities, counties, townships_per_county, villages_per_township
        )
        rows = generate(shape)
    if output is None:
        count = write_csv(rows, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = write_csv(rows, handle)
    echo_err(f"{count} units generated")


@keys_app.command("create")
def keys_create(
    role: Annotated[
        Role,
        typer.Option(
            help="desk posts events and registers cases, reader reads, bureau reads, acts on "
            "applications for the title (a county bureau applies, a city bureau reviews, the "
            "province bureau awards), decides disputes and supervises cases, handler (with "
            "--body) acts on the cases routed to its body, admin does everything"
        ),
    ],
    scope: Annotated[
        str | None, typer.Option(help="Scope unit code (required but for admin)")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Who holds the key")] = None,
    expires: Annotated[datetime | None, typer.Option(help="Expiry (ISO date or time, UTC)")] = None,
    actor: Annotated[str | None, ACTOR_OPTION] = None,
    body: Annotated[
        str | None,
        typer.Option(help="A handler's body of the scope unit (as `sanwu bodies load` named it)"),
    ] = None,
) -> None:
    """Create a key and print it, alone on stdout. Only its hash is stored."""
    who = actor_of(actor)
    if scope is None and role != Role.admin:
        echo_err("--scope is required but for admin keys")
        raise typer.Exit(2)
    if (body is None) is (role == Role.handler):
        echo_err("--body is required for handler keys, and only for them")
        raise typer.Exit(2)

    async def create(db: Database, connection: AsyncConnection) -> str:
        unit = None if scope is None else await UnitRegistry(db.engine).get(scope)
        if scope is not None and unit is None:
            echo_err(f"unknown scope unit {scope}")
            raise typer.Exit(2)
        if role == Role.bureau and unit is not None and unit.level not in BUREAU_LEVELS:
            echo_err(f"a bureau's scope is a county, city or province; {scope} is a {unit.level}")
            raise typer.Exit(2)
        if body is not None and scope is not None:
            bodies = await BodyRepository.from_connection(connection)
            if await bodies.name_of(scope, body) is None:
                echo_err(f"{scope} has no body {body} (load it with `sanwu bodies load`)")
                raise typer.Exit(2)
        return await access_service.create(
            connection,
            role=role,
            scope_code=scope,
            label=label,
            expires_at=expires,
            actor=who,
            body=body,
        )

    typer.echo(run(in_transaction(create, migrated=True)))


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    now = datetime.now(UTC)
    for key in run(in_transaction(lambda _, connection: access_service.list_keys(connection))):
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


def actor_of(name: str | None) -> str:
    """The audit's actor: the name given, or the operating-system account."""
    if name is None:
        return access_service.os_user()
    try:
        return access_service.named_actor(name)
    except ValueError as exc:
        echo_err(f"--actor: {exc}")
        raise typer.Exit(2) from exc


@keys_app.command("revoke")
def keys_revoke(key_id: str, actor: Annotated[str | None, ACTOR_OPTION] = None) -> None:
    """Revoke a key by its id (the part after 'sanwu_'); refused at once from then on."""
    who = actor_of(actor)

    async def revoke(_: Database, connection: AsyncConnection) -> bool:
        return await access_service.revoke(connection, key_id, actor=who)

    if not run(in_transaction(revoke)):
        echo_err(f"no active key {key_id}")
        raise typer.Exit(1)
    echo_err(f"key {key_id} revoked")


@keys_app.command("audit")
def keys_audit(
    key: Annotated[str | None, typer.Option(help="Only this key id")] = None,
) -> None:
    """Who created and revoked keys, and when keys expired, oldest first (tab-separated: when,
    what, key id, role, scope, who)."""
    entries = run(in_transaction(lambda _, c: access_service.audit(c, key_id=key)))
    for entry in entries:
        at = entry["at"]
        typer.echo(
            f"{at.isoformat() if isinstance(at, datetime) else at}\t{entry['action']}\t"
            f"{entry['key_id']}\t{entry['role']}\t{entry['scope_code'] or '*'}\t{entry['actor']}"
        )


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create the petition-event, status and dead-letter topics if missing."""
    created = run(kafka.ensure_topics(get_settings(), timeout=COMMAND_WAIT_SECONDS))
    echo_err(f"topics created: {', '.join(created)}" if created else "topics already exist")


@topics_app.command("asyncapi")
def topics_asyncapi(
    output: Annotated[Path | None, typer.Option(help="File to write; stdout if omitted")] = None,
) -> None:
    """Print the AsyncAPI 3.0 document of every topic, as the services serve it at
    /asyncapi.json (topic names and servers from the SANWU_* settings)."""
    text = json.dumps(asyncapi_document(get_settings()), ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        echo_err(f"{output}: the AsyncAPI document written")
