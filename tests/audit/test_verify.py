"""`sanwu audit verify` against the service's log and the services' own history rows: it holds
on an untouched stack, read from the tables or over HTTP; after the superuser rewrites a
journal row and an application step (the only way past the history triggers), it names exactly
those two leaves and exits 1."""

import json
from pathlib import Path

import asyncpg
import pytest

from services.audit.checkpoints import Checkpoint
from shared.config import MIGRATOR_ROLE
from tests.support.audit import SIBLING_VILLAGE, VILLAGE, AuditWorld, sanwu
from tests.support.events import visit
from tests.support.stack import SUPERUSER, dsn_as

pytestmark = pytest.mark.timeout(180)


async def logged_world(world: AuditWorld) -> tuple[str, int, int, int]:
    """An event and a step in the log and under a checkpoint: (event id, its leaf, step id,
    its leaf)."""
    event_id = await world.post_event(visit(SIBLING_VILLAGE, headcount=2))
    step_id = await world.add_step(reason="请补充台账")
    event_leaf = await world.index_of("event", event_id)
    step_leaf = await world.index_of("application_step", step_id)
    await world.checkpoint(covering=max(event_leaf, step_leaf) + 1)
    return event_id, event_leaf, step_id, step_leaf


async def test_an_untouched_log_holds_read_from_its_tables_and_over_http(
    world: AuditWorld,
) -> None:
    await logged_world(world)
    ran = await sanwu("audit", "verify", env=world.env)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert ran.stdout == ""
    assert "the log holds" in ran.stderr

    env = world.env | {"SANWU_API_KEY": world.keys["county_reader"]}
    ran = await sanwu("audit", "verify", "--url", world.url, env=env)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "the log holds" in ran.stderr


async def test_rewritten_history_rows_are_named_leaf_by_leaf(world: AuditWorld) -> None:
    event_id, event_leaf, step_id, step_leaf = await logged_world(world)
    superuser = await asyncpg.connect(dsn_as(SUPERUSER, world.stack.database))
    try:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            await superuser.execute(
                "UPDATE intake.journal SET payload = jsonb_set(payload, '{headcount}', '1') "
                "WHERE event_id = $1",
                event_id,
            )
            await superuser.execute(
                "UPDATE applications.step SET reason = '材料齐全' WHERE step_id = $1", step_id
            )
        ran = await sanwu("audit", "verify", env=world.env)
    finally:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            await superuser.execute(
                "UPDATE intake.journal SET payload = jsonb_set(payload, '{headcount}', '2') "
                "WHERE event_id = $1",
                event_id,
            )
            await superuser.execute(
                "UPDATE applications.step SET reason = '请补充台账' WHERE step_id = $1", step_id
            )
        await superuser.close()
    assert ran.code == 1, ran.stdout + ran.stderr
    assert sorted(ran.stdout.splitlines()) == sorted(
        [
            f"leaf {event_leaf} (event {event_id}) differs from its row in intake.journal",
            f"leaf {step_leaf} (application_step {step_id}) differs from its row in "
            "applications.step",
        ]
    )
    assert "2 differences" in ran.stderr
    assert (await sanwu("audit", "verify", env=world.env)).code == 0  # restored


async def test_a_history_row_removed_is_named_too(world: AuditWorld) -> None:
    event_id = await world.post_event(visit(VILLAGE, headcount=3))
    index = await world.index_of("event", event_id)
    await world.checkpoint(covering=index + 1)
    superuser = await asyncpg.connect(dsn_as(SUPERUSER, world.stack.database))
    saved = await superuser.fetchrow("SELECT * FROM intake.journal WHERE event_id = $1", event_id)
    free_text = await superuser.fetchrow(
        "SELECT * FROM intake.free_text WHERE event_id = $1", event_id
    )
    try:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            await superuser.execute("DELETE FROM intake.free_text WHERE event_id = $1", event_id)
            await superuser.execute("DELETE FROM intake.journal WHERE event_id = $1", event_id)
        ran = await sanwu("audit", "verify", env=world.env)
    finally:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            columns = list(saved.keys())
            await superuser.execute(
                f"INSERT INTO intake.journal ({', '.join(columns)}) VALUES "
                f"({', '.join(f'${i + 1}' for i in range(len(columns)))})",
                *saved.values(),
            )
            if free_text is not None:
                await superuser.execute(
                    "INSERT INTO intake.free_text VALUES ($1, $2, $3)", *free_text.values()
                )
        await superuser.close()
    assert ran.code == 1
    assert ran.stdout.splitlines() == [
        f"leaf {index} (event {event_id}) has no row in intake.journal"
    ]


async def test_a_checkpoint_kept_by_a_witness_is_checked_too(
    world: AuditWorld, tmp_path: Path
) -> None:
    await logged_world(world)
    env = world.env | {"SANWU_API_KEY": world.keys["county_reader"]}
    state = tmp_path / "witness.json"
    ran = await sanwu("audit", "witness", "--url", world.url, "--state", str(state), env=env)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert "first run" in ran.stdout
    kept = json.loads(state.read_text(encoding="utf-8"))
    assert kept["public_key"]["key_id"] == world.settings.signer().public_key.key_id

    await logged_world(world)
    ran = await sanwu("audit", "verify", "--from-checkpoint", str(state), env=world.env)
    assert ran.code == 0, ran.stdout + ran.stderr
    ran = await sanwu("audit", "witness", "--url", world.url, "--state", str(state), env=env)
    assert ran.code == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith(f"consistent: kept size {kept['checkpoint']['size']}")


async def test_the_migrator_cannot_change_the_log_either(world: AuditWorld) -> None:
    connection = await asyncpg.connect(dsn_as(MIGRATOR_ROLE, world.stack.database))
    try:
        for statement in (
            "UPDATE audit.leaf SET body = '{}' WHERE leaf_index = 0",
            "DELETE FROM audit.node WHERE level = 0 AND position = 0",
            "DELETE FROM audit.checkpoint",
            "TRUNCATE audit.leaf",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="is history"):
                await connection.execute(statement)
    finally:
        await connection.close()


async def test_a_checkpoint_signed_when_asked_is_the_one_served(world: AuditWorld) -> None:
    ran = await sanwu("audit", "checkpoint", env=world.env)
    assert ran.code == 0, ran.stderr
    signed = Checkpoint.from_json(json.loads(ran.stdout))
    world.settings.signer().public_key.verify(signed)
    served = (await world.audit.get("/v1/log/checkpoint")).json()
    assert Checkpoint.from_json(served) == signed
