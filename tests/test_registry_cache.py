"""The in-process registry follows the database: a load it polls is read whole (a renamed and
moved village is found under its new parent, with its new name), and a code it lacks is
looked up at once. The units are provinces of their own (57, 58)."""

from pathlib import Path

from shared.db import Database
from shared.levels import Level
from shared.registry.cache import UnitRegistry
from shared.registry.loader import load_file

HEADER = "code,name,level,parent_code\n"


def province(code: str) -> str:
    return (
        f"{code}0000000000,测试省,province,\n"
        f"{code}0100000000,测试市,city,{code}0000000000\n"
        f"{code}0101000000,测试县,county,{code}0100000000\n"
        f"{code}0101100000,甲镇,township,{code}0101000000\n"
        f"{code}0101101000,乙镇,township,{code}0101000000\n"
    )


def registry_file(path: Path, text: str) -> Path:
    path.write_text(HEADER + text, encoding="utf-8")
    return path


async def load(db: Database, path: Path, text: str) -> None:
    async with db.engine.begin() as connection:
        await load_file(connection, registry_file(path, text))


async def test_a_reload_reads_the_changed_registry_whole(db: Database, tmp_path: Path) -> None:
    village, first, second = "570101100201", "570101100000", "570101101000"
    await load(db, tmp_path / "a.csv", province("57") + f"{village},某村,village,{first}\n")
    registry = UnitRegistry(db.engine)
    assert await registry.refresh()
    before = (registry.get_cached(village), registry.children(first), registry.children(second))

    await load(db, tmp_path / "b.csv", f"{village},某村（更名）,village,{second}\n")
    reloaded = await registry.refresh()

    assert before[0] is not None and before[0].parent_code == first
    assert before[1:] == ([village], [])
    assert reloaded and not await registry.refresh()
    moved = registry.get_cached(village)
    assert moved is not None and (moved.name, moved.parent_code) == ("某村（更名）", second)
    assert [u.code for u in registry.ancestors(village)] == [
        village, second, "570101000000", "570100000000", "570000000000"
    ]  # fmt: skip
    assert (registry.children(first), registry.children(second)) == ([], [village])
    assert registry.keying_unit(village) == "570101000000"
    assert registry.is_within(village, second) and not registry.is_within(village, first)
    assert "570000000000" in registry.roots()


async def test_a_unit_loaded_after_the_last_reload_is_found_at_once(
    db: Database, tmp_path: Path
) -> None:
    await load(db, tmp_path / "a.csv", province("58"))
    registry = UnitRegistry(db.engine)
    await registry.refresh()
    village = "580101100201"
    await load(db, tmp_path / "b.csv", f"{village},后建村,village,580101100000\n")

    cached_before = registry.get_cached(village)
    found = await registry.get(village)

    assert cached_before is None
    assert found is not None and (found.name, found.level) == ("后建村", Level.village)
    assert registry.children("580101100000") == [village]
    assert await registry.get("580101100299") is None
