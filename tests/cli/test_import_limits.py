"""What `sanwu events import` refuses to read (a file past its size or row limit, an xlsx that
unpacks too far or carries XML entities), each with one line naming why and nothing posted; and
what it does when intake refuses a batch the dry run had passed."""

import csv
import json
import tomllib
import zipfile
from pathlib import Path

import httpx
import openpyxl.xml
import pytest
from typer.testing import CliRunner

from services.intake.commands import events_app
from services.intake.importing import ImportFailed, parse_rows, post_rows
from services.intake.sheets import read_sheet
from tests.conftest import ROOT, VILLAGE
from tests.support.processes import free_port

HEADINGS = ["事件编号(可空)", "单位代码", "发生时间", "评价结果", "评价来源", "事项编号"]
ROW = ["", VILLAGE, "2018-06-20 11:00", "满意", "第三方", ""]
NOWHERE = f"http://127.0.0.1:{free_port()}"  # nothing may be posted: nothing listens there


def imported(path: Path) -> tuple[int, str]:
    args = ["import", str(path), "--url", NOWHERE, "--key", "sanwu_not-a-key"]
    result = CliRunner().invoke(events_app, args)
    return result.exit_code, result.stderr


def ratings_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADINGS)
        writer.writerows([ROW] * rows)
    return path


def test_a_file_over_20_mib_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = ratings_csv(tmp_path / "ratings.csv", 1)
    with path.open("r+b") as handle:
        handle.truncate(20 * 2**20 + 1)

    code, stderr = imported(path)

    assert code == 1
    assert "an import takes files of at most 20 MiB" in stderr and "Traceback" not in stderr


def test_a_file_of_more_than_100000_rows_is_refused_naming_the_limit(tmp_path: Path) -> None:
    at_limit = ratings_csv(tmp_path / "at-limit.csv", 100_000)
    over = ratings_csv(tmp_path / "over.csv", 100_001)

    code, stderr = imported(over)

    assert code == 1 and "an import takes at most 100,000" in stderr
    assert len(read_sheet(at_limit)[1]) == 100_000


def test_an_xlsx_that_unpacks_past_200_mib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ratings.xlsx"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as packed,
        packed.open("xl/sharedStrings.xml", "w", force_zip64=True) as member,
    ):
        for _ in range(201):
            member.write(b" " * 2**20)

    code, stderr = imported(path)

    assert path.stat().st_size < 20 * 2**20
    assert code == 1 and "unpacking to at most 200 MiB" in stderr


def test_an_xlsx_carrying_xml_entities_is_refused(tmp_path: Path) -> None:
    """openpyxl reads through defusedxml, a declared dependency: no entity is expanded."""
    path = tmp_path / "ratings.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADINGS)
    sheet.append(ROW)
    workbook.save(path)
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    )
    with zipfile.ZipFile(path) as original:
        members = {name: original.read(name) for name in original.namelist()}
    sheet_xml = members["xl/worksheets/sheet1.xml"].decode()
    body = sheet_xml.split("?>", 1)[1] if sheet_xml.startswith("<?xml") else sheet_xml
    members["xl/worksheets/sheet1.xml"] = (bomb + body).encode()
    with zipfile.ZipFile(path, "w") as rewritten:
        for name, data in members.items():
            rewritten.writestr(name, data)

    code, stderr = imported(path)

    assert code == 1 and "cannot read" in stderr and "Traceback" not in stderr
    assert openpyxl.xml.DEFUSEDXML
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("defusedxml") for d in declared)


async def test_a_batch_refused_after_the_dry_run_passed_stops_the_import_and_says_what_it_stored(
    tmp_path: Path,
) -> None:
    """Intake refuses a row the dry run had passed (a unit left the registry in between): the
    command posts no further batch and says how many rows intake stored before."""
    record_type, rows = read_sheet(ratings_csv(tmp_path / "ratings.csv", 3))
    parsed, _ = parse_rows(rows, record_type)
    posted: list[tuple[bool, int]] = []

    def intake(request: httpx.Request) -> httpx.Response:
        dry = request.url.params["dry_run"] == "true"
        posted.append((dry, len(json.loads(request.content)["events"])))
        refused = not dry and sum(not d for d, _ in posted) == 2
        status = "rejected" if refused else "accepted"
        error = {"status": 422, "detail": "unknown unit"} if refused else None
        return httpx.Response(200, json={"results": [{"status": status, "error": error}]})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(intake), base_url="http://intake"
    ) as client:
        with pytest.raises(ImportFailed) as failed:
            await post_rows(client, parsed, batch_size=1)

    assert posted == [(True, 1)] * 3 + [(False, 1)] * 2  # the third row never posted
    assert "第3行" in failed.value.detail
    assert "intake stored 1 new rows of the file" in failed.value.detail
    assert "import the same file again" in failed.value.detail
