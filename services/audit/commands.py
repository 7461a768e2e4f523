"""`sanwu audit ...`: run the log's consumers on their own, sign a checkpoint now, verify the
log against its checkpoints and every service's history, witness it from a city."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shared.cli import echo_err, require_database, run

if TYPE_CHECKING:
    from services.audit.checkpoints import Checkpoint, PublicKey
    from services.audit.config import AuditSettings
    from services.audit.leaves import Leaf, LeafKind
    from services.audit.verifying import Verdict
    from shared.db import Database

audit_app = typer.Typer(help="The audit log: checkpoints, verification, witnessing.")

URL_OPTION = typer.Option(
    "--url", help="The audit service's base URL (default for verify: read the log's tables)"
)
KEY_FILE_OPTION = typer.Option(
    "--key-file",
    help="A file whose first line is the API key to read the log with (default: the "
    "SANWU_API_KEY variable); any role may read it",
)
PUBLIC_KEY_OPTION = typer.Option(
    "--public-key",
    help="The log's Ed25519 public key in base64, as its operators published it (default: the "
    "one the checkpoint file keeps, else the one the log names)",
)


def api_key(key_file: Path | None) -> str:
    """The key to read the log with; ends the command with one line when there is none."""
    if key_file is not None:
        lines = key_file.read_text(encoding="utf-8").splitlines()
        key = lines[0].strip() if lines else ""
    else:
        key = os.environ.get("SANWU_API_KEY", "").strip()
    if not key:
        echo_err("sanwu: reading the log takes an API key: --key-file FILE or SANWU_API_KEY")
        raise typer.Exit(1)
    return key


@audit_app.command("consume")
def consume() -> None:
    """Append the history topics and the key operations to the log and sign its checkpoints,
    without serving the API (until interrupted)."""
    from services.audit.config import get_settings
    from services.audit.main import blueprint
    from shared import service_commands

    settings = get_settings().model_copy(update={"audit_run_consumer": True})
    service_commands.consume(blueprint(settings), settings)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the log as it is now and print it (JSON)."""
    import json

    from services.audit.service import AuditLog
    from shared.campaign import system_now

    async def sign() -> str:
        async with _database() as (db, settings):
            audit_log = AuditLog(db=db, signer=settings.signer(), clock=system_now)
            signed = await audit_log.sign(unless_unchanged=False)
        return json.dumps(signed.as_json())

    typer.echo(run(sign()))


@audit_app.command("verify")
def verify(
    url: Annotated[str | None, URL_OPTION] = None,
    from_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--from-checkpoint",
            help="A checkpoint kept earlier: a witness's state file, or a checkpoint as "
            "`GET /v1/log/checkpoint` served it",
        ),
    ] = None,
    key_file: Annotated[Path | None, KEY_FILE_OPTION] = None,
    public_key: Annotated[str | None, PUBLIC_KEY_OPTION] = None,
) -> None:
    """Recompute the log's tree from its entries, check every checkpoint's signature and root
    and the consistency with a kept checkpoint, and check intake's journal, applications'
    steps, the disputes' steps, the cases' steps and the key audit against their leaves (as the
    migrator). Each difference is printed on its own line naming the leaf; exit 0 when there is
    none, 1 otherwise."""
    from services.audit.checkpoints import CheckpointRefused
    from services.audit.sources import LogUnavailable, read_kept

    try:
        kept = read_kept(from_checkpoint) if from_checkpoint else (None, None)
        key = api_key(key_file) if url is not None else ""
        verdict = run(_verify(url, kept, key, public_key))
    except (CheckpointRefused, LogUnavailable) as exc:
        echo_err(f"sanwu: {exc}")
        raise typer.Exit(1) from exc
    for finding in verdict.findings:
        typer.echo(finding)
    for note in verdict.notes:
        echo_err(note)
    not_yet = sum(verdict.not_yet_logged.values())
    echo_err(
        f"{verdict.size} leaves, {verdict.checkpoints} checkpoints, "
        f"{sum(verdict.rows.values())} history rows checked ({not_yet} not in the log yet): "
        + ("the log holds" if verdict.holds else f"{len(verdict.findings)} differences")
    )
    raise typer.Exit(0 if verdict.holds else 1)


@audit_app.command("witness")
def witness_command(
    url: Annotated[str, typer.Option("--url", help="The audit service's base URL")],
    state: Annotated[
        Path, typer.Option("--state", help="The file the witness keeps its checkpoint in")
    ],
    key_file: Annotated[Path | None, KEY_FILE_OPTION] = None,
    public_key: Annotated[str | None, PUBLIC_KEY_OPTION] = None,
) -> None:
    """Fetch the log's latest checkpoint, check its signature and that it extends the one
    kept in STATE, and keep it. An inconsistency exits 1 with both checkpoints printed."""
    import json

    from services.audit.checkpoints import CheckpointRefused
    from services.audit.sources import HttpLog, LogUnavailable, read_state, write_kept
    from services.audit.witness import Inconsistent, Witnessed, witness

    key = api_key(key_file)

    async def watch() -> Witnessed:
        async with HttpLog.at(url, api_key=key) as log:
            return await witness(log, read_state(state), key=_public_key(public_key))

    try:
        done = run(watch())
    except Inconsistent as exc:
        typer.echo(f"INCONSISTENT: {exc}")
        typer.echo(f"kept:   {json.dumps(exc.kept.as_json())}")
        typer.echo(f"latest: {json.dumps(exc.latest.as_json())}")
        raise typer.Exit(1) from exc
    except (CheckpointRefused, LogUnavailable) as exc:
        typer.echo(f"REFUSED: {exc}")
        raise typer.Exit(1) from exc
    write_kept(state, done.now)
    before = done.before.describe() if done.before else "none (first run)"
    typer.echo(f"consistent: kept {before}; now {done.latest.describe()}")


@audit_app.command("included")
def included_command(
    url: Annotated[str, typer.Option("--url", help="The audit service's base URL")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="event, application_step, dispute_step, case_step or key_operation"
        ),
    ],
    record_id: Annotated[str, typer.Option("--id", help="The event id, step id or key audit id")],
    state: Annotated[
        Path,
        typer.Option("--state", help="The witness's state file: the checkpoint to prove against"),
    ],
    key_file: Annotated[Path | None, KEY_FILE_OPTION] = None,
) -> None:
    """Prove that one record is in the log: fetch its leaf and an inclusion proof for the
    checkpoint the witness kept in STATE, and check the proof; exit 0 with the leaf, or 1
    saying why not."""
    from services.audit.checkpoints import CheckpointRefused
    from services.audit.merkle import ProofRefused
    from services.audit.sources import HttpLog, LogUnavailable, read_state
    from services.audit.witness import Included, NotYetCovered, prove_included

    key = api_key(key_file)

    async def prove() -> Included:
        kept = read_state(state)
        if kept is None:
            raise CheckpointRefused(f"no checkpoint kept in {state}: run `sanwu audit witness`")
        async with HttpLog.at(url, api_key=key) as log:
            return await prove_included(log, kept, kind=kind, record_id=record_id)

    try:
        done = run(prove())
    except (CheckpointRefused, LogUnavailable, ProofRefused, NotYetCovered) as exc:
        typer.echo(f"NOT PROVEN: {exc}")
        raise typer.Exit(1) from exc
    typer.echo(f"included: leaf {done.index} in {done.checkpoint.describe()}")
    typer.echo(done.leaf.decode())


# --- the pieces ---------------------------------------------------------------------------


@asynccontextmanager
async def _database() -> "AsyncIterator[tuple[Database, AuditSettings]]":
    """The database as the migrator, with the audit service's settings."""
    from services.audit.config import get_settings
    from shared.config import as_migrator
    from shared.db import Database

    settings = as_migrator(get_settings())
    await require_database()
    db = Database.from_settings(settings, pool_size=3)
    try:
        yield db, settings
    finally:
        await db.dispose()


def _public_key(text: str | None) -> "PublicKey | None":
    """A key given on the command line (the log's name is taken from the log)."""
    from services.audit.checkpoints import PublicKey

    if text is None:
        return None
    return PublicKey.from_json({"algorithm": "Ed25519", "public_key": text, "origin": ""})


async def _verify(
    url: str | None,
    kept_file: "tuple[PublicKey | None, Checkpoint | None]",
    key: str,
    public_key: str | None,
) -> "Verdict":
    from services.audit.repository import HistoryRepository
    from services.audit.service import AuditLog
    from services.audit.sources import DatabaseLog, HttpLog, LogSource
    from services.audit.verifying import verify
    from shared.campaign import system_now

    kept_key, kept = kept_file
    async with _database() as (db, settings):
        signer = settings.signer()
        trusted = _public_key(public_key) or kept_key

        async def history(kind: "LeafKind") -> "AsyncIterator[Leaf]":
            # A snapshot taken after the entries were read: every logged row is in it.
            async with (
                db.connection() as connection,
                connection.transaction(isolation="repeatable_read", readonly=True),
            ):
                async for leaf in HistoryRepository(connection).leaves(kind):
                    yield leaf

        @asynccontextmanager
        async def source() -> AsyncIterator[LogSource]:
            if url is None:
                audit_log = AuditLog(db=db, signer=signer, clock=system_now)
                yield DatabaseLog(db, key=signer.public_key, audit_log=audit_log)
            else:
                async with HttpLog.at(url, api_key=key) as log:
                    yield log

        async with source() as log:
            return await verify(log, history=history, kept=kept, key=trusted)
