"""`sanwu events import` stores all of a file or nothing of it: a row intake would refuse, in
any batch, keeps every row out (unless the refused rows are to be skipped); and a row without
an id of its own is stored under an id keyed with intake's secret, the same on every import."""

import uuid
from pathlib import Path

from shared.db import Database
from tests.conftest import SIBLING_VILLAGE, VILLAGE
from tests.support.importing import (
    RATING_HEADINGS,
    ids_of,
    import_file,
    journalled,
    ref,
    seeds_of,
    write_csv,
)


async def test_a_row_intake_would_refuse_is_named_and_nothing_of_the_file_is_kept(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "ratings.csv",
        [
            ["", VILLAGE, "2018-09-01 10:00", "满意", "第三方", ref()],
            [str(uuid.uuid4()), VILLAGE, "2018-09-01 11:00", "满意", "第三方", ref()],
            ["", SIBLING_VILLAGE, "2018-09-01 10:00", "满意", "第三方", ref()],
            ["", "340722999999", "2018-09-01 10:00", "满意", "第三方", ref()],
        ],
        headings=RATING_HEADINGS,
    )
    ids = ids_of(path)

    # A batch a row: the refused rows' batches come after the good ones'.
    ran = await import_file(path, intake_url, keys["township_desk"], "--batch-size", "1")

    assert ran.code == 1
    assert "accepted 0, already known 0, refused 2" in ran.stdout
    assert "第4行: intake refused it (403)" in ran.stderr
    assert "第5行: intake refused it (422)" in ran.stderr and "unit_code" in ran.stderr
    assert "nothing was posted" in ran.stderr
    assert await journalled(db, ids) == {}


async def test_skip_bad_rows_leaves_out_what_intake_refuses_and_records_the_rest(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "ratings.csv",
        [
            ["", VILLAGE, "2018-09-02 10:00", "满意", "第三方", ref()],
            ["", SIBLING_VILLAGE, "2018-09-02 10:00", "满意", "第三方", ref()],
        ],
        headings=RATING_HEADINGS,
    )
    ids = ids_of(path)

    ran = await import_file(path, intake_url, keys["township_desk"], "--skip-bad-rows")

    assert ran.code == 0, ran.stderr
    assert "accepted 1, already known 0, refused 1" in ran.stdout
    assert "第3行: intake refused it (403)" in ran.stderr
    assert list(await journalled(db, ids)) == [ids[0]]


async def test_an_imported_id_tells_nothing_of_the_matter_reference(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    """Anyone may derive a row's seed from a guess of its reference, as the command does; the
    event's id is keyed from it with the server's secret, so no guess can be checked by it."""
    path = write_csv(
        tmp_path / "ratings.csv",
        [["", VILLAGE, "2018-09-03 10:00", "不满意", "信访群众", "信访事项-2018-0007"]],
        headings=RATING_HEADINGS,
    )

    ran = await import_file(path, intake_url, keys["county_desk"])
    again = await import_file(path, intake_url, keys["county_desk"])

    assert ran.code == again.code == 0, ran.stderr + again.stderr
    assert "accepted 1" in ran.stdout and "accepted 0, already known 1" in again.stdout
    [seed], [stored] = seeds_of(path), list(await journalled(db, ids_of(path)))
    assert stored != seed and uuid.UUID(stored).version == 8
    assert await journalled(db, [seed]) == {}


async def test_one_id_given_to_two_rows_of_other_content_is_a_bad_row(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    """Intake would take the first and refuse the second only once the first is stored."""
    given = str(uuid.uuid4())
    path = write_csv(
        tmp_path / "ratings.csv",
        [
            [given, VILLAGE, "2018-09-04 10:00", "满意", "第三方", ref()],
            ["", VILLAGE, "2018-09-04 11:00", "满意", "第三方", ref()],
            [given, VILLAGE, "2018-09-04 10:00", "不满意", "第三方", ref()],
        ],
        headings=RATING_HEADINGS,
    )

    ran = await import_file(path, intake_url, keys["county_desk"], "--batch-size", "1")

    assert ran.code == 1
    assert "第4行: 事件编号(可空)(event_id): 与第2行编号相同而内容不同" in ran.stderr
    assert "nothing was posted" in ran.stderr
    assert await journalled(db, [given, *ids_of(path)]) == {}
