"""`sanwu events template` and `sanwu events import`: a sheet of work records checked row by
row, posted through intake (served in-process on a port of its own), each row recorded once
however often the file is imported, and a file with a bad row storing nothing unless asked."""

import uuid
from pathlib import Path

from openpyxl import load_workbook

from shared.db import Database
from tests.conftest import VILLAGE
from tests.support.importing import (
    MEETING_HEADINGS,
    RATING_HEADINGS,
    events,
    ids_of,
    import_file,
    journalled,
    ref,
    sanwu,
    write_csv,
)
from tests.support.processes import free_port

VILLAGE_2 = "340722100202"


async def test_template_has_chinese_headings_an_example_row_and_value_lists(
    db: Database, tmp_path: Path
) -> None:
    ran = await sanwu("events", "template", str(tmp_path / "ratings.xlsx"))
    meetings = await events(
        "template", "--type", "screening_meeting", str(tmp_path / "meetings.csv")
    )

    assert ran.code == 0 and meetings.code == 0, ran.stderr + meetings.stderr
    sheet = load_workbook(tmp_path / "ratings.xlsx").worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == RATING_HEADINGS
    assert rows[1][1:] == [VILLAGE, "2018-06-20 11:00", "基本满意", "第三方", "信访事项编号"]
    lists = {v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists == {'"满意,基本满意,不满意"', '"信访群众,第三方,代表委员"'}
    raw = (tmp_path / "meetings.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # as Excel writes UTF-8, so it shows the Chinese
    assert raw.decode("utf-8-sig").splitlines()[0] == ",".join([*MEETING_HEADINGS, "会议纪要"])
    # The template as written imports as it is: one good row.
    assert len(ids_of(tmp_path / "ratings.xlsx")) == 1
    assert len(ids_of(tmp_path / "meetings.csv")) == 1


async def test_an_xlsx_of_ratings_in_chinese_words_and_codes_is_recorded(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "ratings.xlsx"
    assert (await events("template", str(path))).code == 0
    workbook = load_workbook(path)
    sheet = workbook.worksheets[0]
    sheet.delete_rows(2)
    for row in [
        ["", VILLAGE, "2018-06-20 11:00", "满意", "信访群众", ref()],
        ["", VILLAGE, "2018/6/21 9:30", "基本满意", "第三方", ref()],
        [None, None, None, None, None, None],  # an empty line in the sheet is skipped
        ["", VILLAGE_2, "2018-06-22T10:00:00+08:00", "不满意", "代表委员", None],
        ["", int(VILLAGE_2), "2018-06-23", "satisfied", "third_party", ref()],
    ]:
        sheet.append(row)
    workbook.save(path)
    ids = ids_of(path)

    ran = await sanwu(
        "events", "import", str(path), "--url", intake_url, "--key", keys["county_desk"]
    )

    assert ran.code == 0, ran.stderr
    assert "accepted 4, already known 0, refused 0" in ran.stdout
    stored = await journalled(db, ids)
    assert len(stored) == 4
    assert sorted((p["rating"], p["source"]) for p in stored.values()) == [
        ("basically_satisfied", "third_party"),
        ("dissatisfied", "representative"),
        ("satisfied", "petitioner"),
        ("satisfied", "third_party"),
    ]
    # Times without an offset are Beijing time; matter_ref is hashed by intake as for any post.
    times = sorted(p["occurred_at"] for p in stored.values())
    assert times[1] == "2018-06-21T09:30:00+08:00" and times[3] == "2018-06-23T00:00:00+08:00"
    assert all(p.get("matter_ref", "hmac-sha256:").startswith("hmac-") for p in stored.values())


async def test_a_csv_of_meetings_is_recorded_with_the_key_from_the_environment(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    summary = f"例会纪要，含逗号与\n换行 {uuid.uuid4().hex}"
    path = write_csv(
        tmp_path / "meetings.csv",
        [
            ["", VILLAGE, "2018-06-04 19:00", 9, 2, 1, summary],
            ["", VILLAGE, "2018-06-11 19:00", 7, 0, 0, ""],
        ],
        headings=[*MEETING_HEADINGS, "会议纪要"],
        bom=False,
    )
    ids = ids_of(path)

    ran = await events(
        "import", str(path), "--url", intake_url, env={"SANWU_API_KEY": keys["township_desk"]}
    )

    assert ran.code == 0, ran.stderr
    assert "accepted 2" in ran.stdout
    stored = await journalled(db, ids)
    assert sorted(p["attendees"] for p in stored.values()) == [7, 9]
    assert {p.get("summary") for p in stored.values()} == {summary, None}


async def test_a_file_with_a_bad_row_stores_nothing_and_names_each_bad_line(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "ratings.csv",
        [
            ["", VILLAGE, "2018-06-20 11:00", "满意", "第三方", ref()],
            ["", VILLAGE, "2018-06-20 11:00", "很满意", "第三方", ref()],
            ["", VILLAGE, "昨天", "满意", "邻居", ref()],
            ["", VILLAGE, "2018-06-21 11:00", "不满意", "信访群众", ref()],
        ],
        headings=RATING_HEADINGS,
    )
    good = ids_of(path)

    ran = await import_file(path, intake_url, keys["county_desk"])

    assert ran.code == 1
    lines = ran.stderr.splitlines()
    assert any(line.startswith("第3行: 评价结果(rating): ") for line in lines), ran.stderr
    assert any(line.startswith("第4行: 发生时间(occurred_at): ") for line in lines), ran.stderr
    assert any(line.startswith("第4行: 评价来源(source): ") for line in lines), ran.stderr
    assert not any(line.startswith(("第2行", "第5行")) for line in lines), ran.stderr
    assert "nothing was posted" in ran.stderr and ran.stdout == ""
    assert len(good) == 2 and await journalled(db, good) == {}


async def test_skip_bad_rows_records_the_good_ones(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "meetings.csv",
        [
            ["", VILLAGE, "2018-07-02 19:00", 5, 1, 1],
            ["", VILLAGE, "2018-07-09 19:00", 5, 1, 3],
            ["", VILLAGE, "2018-07-16 19:00", 0, 0, 0],
            ["", VILLAGE, "2018-07-23 19:00", 6, 0, 0],
        ],
        headings=MEETING_HEADINGS,
    )
    good = ids_of(path)

    ran = await import_file(path, intake_url, keys["county_desk"], "--skip-bad-rows")

    assert ran.code == 0, ran.stderr
    assert "第3行: 化解数(disputes_resolved): " in ran.stderr
    assert "第4行: 参会人数(attendees): " in ran.stderr
    assert "accepted 2, already known 0, refused 0, bad rows skipped 2" in ran.stdout
    assert set(await journalled(db, good)) == set(good) and len(good) == 2


async def test_importing_twice_records_each_row_once(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    same = ["", VILLAGE, "2018-08-01 10:00", "满意", "第三方", None]
    # Two people rating alike at the same time are two ratings; a given id is kept as given.
    given = str(uuid.uuid4())
    path = write_csv(
        tmp_path / "ratings.csv",
        [
            same,
            same,
            ["", VILLAGE, "2018-08-02 10:00", "满意", "第三方", ref()],
            [given, VILLAGE, "2018-08-03 10:00", "不满意", "信访群众", ref()],
        ],
        headings=RATING_HEADINGS,
    )

    first = await import_file(path, intake_url, keys["county_desk"], "--batch-size", "3")
    again = await import_file(path, intake_url, keys["county_desk"], "--batch-size", "3")

    assert first.code == 0 and again.code == 0, first.stderr + again.stderr
    assert "accepted 4, already known 0" in first.stdout
    assert "accepted 0, already known 4" in again.stdout
    ids = ids_of(path)
    assert len(set(ids)) == 4 and given in ids
    assert len(await journalled(db, ids)) == 4


async def test_an_unknown_key_or_an_unreachable_intake_ends_with_one_line(
    db: Database, intake_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "ratings.csv",
        [["", VILLAGE, "2018-09-02 10:00", "满意", "第三方", ref()]],
        headings=RATING_HEADINGS,
    )
    closed = f"http://127.0.0.1:{free_port()}"

    unknown = await import_file(path, intake_url, "sanwu_not-a-key")
    unreachable = await import_file(path, closed, "sanwu_not-a-key")

    assert unknown.code == 1 and "intake answered 401" in unknown.stderr
    assert unreachable.code == 1 and "cannot reach intake" in unreachable.stderr
    assert "Traceback" not in unknown.stderr + unreachable.stderr
    assert await journalled(db, ids_of(path)) == {}


async def test_a_sheet_without_work_record_columns_is_refused(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "units.csv", [["1", "2"]], headings=["code", "name"])

    ran = await import_file(path, intake_url, keys["county_desk"])

    assert ran.code == 1 and "cannot read" in ran.stderr and "评价结果" in ran.stderr


async def test_bad_rows_of_an_xlsx_are_named_by_their_line_in_the_sheet(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "ratings.xlsx"
    assert (await events("template", str(path))).code == 0
    workbook = load_workbook(path)
    sheet = workbook.worksheets[0]
    sheet["D2"] = "很满意"  # the example row, made bad
    sheet["A5"], sheet["B5"], sheet["C5"] = "not-a-uuid", VILLAGE, "2018-06-20 11:00"
    sheet["D5"], sheet["E5"] = "满意", "第三方"
    workbook.save(path)

    ran = await import_file(path, intake_url, keys["county_desk"])

    assert ran.code == 1
    bad = [line for line in ran.stderr.splitlines() if line.startswith("第")]
    assert bad == [
        "第2行: 评价结果(rating): Input should be 'satisfied', 'basically_satisfied' or "
        "'dissatisfied' (或 满意、基本满意、不满意)",
        bad[1],
    ]
    assert bad[1].startswith("第5行: 事件编号(可空)(event_id): ")


async def test_a_csv_excel_saved_in_gb18030_is_read(
    db: Database, keys: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "ratings.csv"
    rows = [",".join(RATING_HEADINGS), f",{VILLAGE},2018-10-08 10:00,基本满意,两代表一委员,{ref()}"]
    path.write_bytes("\r\n".join(rows).encode("gb18030"))

    ran = await import_file(path, intake_url, keys["county_desk"])

    assert ran.code == 0, ran.stderr
    stored = await journalled(db, ids_of(path))
    assert [(p["rating"], p["source"]) for p in stored.values()] == [
        ("basically_satisfied", "representative")
    ]
