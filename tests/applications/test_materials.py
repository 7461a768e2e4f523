"""The application materials (申报材料): an XLSX with the Chinese headings and one row per unit,
and a PDF whose first page, rendered to an image, shows the county's name."""

import io
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pypdfium2
import pytest

from services.applications.materials import UNIT_HEADINGS
from shared.db import Database
from tests.conftest import COUNTY, TOWNSHIP, VILLAGE
from tests.support.app import bearer
from tests.support.applications import act, proposed, stored

PERIOD = "a-materials"
FORMULA = '=HYPERLINK("http://example.invalid","点我")'


@pytest.fixture(scope="module")
async def reviewed(applications: httpx.AsyncClient, bureau_keys: dict[str, str]) -> dict[str, Any]:
    """An application of the county, submitted, with the village approved and the township
    returned by the city."""
    units = proposed(VILLAGE, TOWNSHIP)
    units[0]["self_evaluation"] = FORMULA  # a cell that must stay text
    created = await applications.post(
        "/v1/applications",
        json={"period": PERIOD, "units": units},
        headers=bearer(bureau_keys["county_bureau"]),
    )
    assert created.status_code == 201, created.text
    submitted = await act(
        applications, bureau_keys["county_bureau"], application=created.json(), action="submit"
    )
    assert submitted.status_code == 200, submitted.text
    approved = await act(
        applications,
        bureau_keys["city_bureau"],
        application=submitted.json(),
        action="review",
        body={
            "decisions": [
                {"code": VILLAGE, "decision": "approve"},
                {"code": TOWNSHIP, "decision": "return", "reason": "整改台账不全，请补充后再报"},
            ]
        },
    )
    assert approved.status_code == 200, approved.text
    return dict(approved.json())


async def materials(
    client: httpx.AsyncClient, key: str, application: dict[str, Any], file_format: str
) -> httpx.Response:
    return await client.get(
        f"/v1/applications/{application['application_id']}/materials",
        params={"format": file_format},
        headers=bearer(key),
    )


class TestXlsx:
    async def test_has_the_chinese_headings_and_one_row_per_unit(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        reviewed: dict[str, Any],
    ) -> None:
        response = await materials(applications, bureau_keys["city_bureau"], reviewed, "xlsx")

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        assert "attachment" in response.headers["content-disposition"]
        workbook = openpyxl.load_workbook(io.BytesIO(response.content))
        assert workbook.sheetnames == ["申报概况", "申报单位", "办理过程"]
        rows = list(workbook["申报单位"].iter_rows(values_only=True))
        assert list(rows[0]) == UNIT_HEADINGS
        by_code = {row[0]: row for row in rows[1:]}
        assert sorted(by_code) == sorted([VILLAGE, TOWNSHIP])  # one row per unit
        assert by_code[TOWNSHIP][1] == "枞阳镇"
        assert by_code[TOWNSHIP][3] == "市级退回"
        assert by_code[TOWNSHIP][12] == "整改台账不全，请补充后再报"
        assert by_code[VILLAGE][3] == "市级推荐"
        assert by_code[VILLAGE][6] == "三无（申报时无计入事件）"  # the evidence snapshot
        summary = dict(workbook["申报概况"].iter_rows(min_row=3, values_only=True))
        assert summary["申报单位"] == f"枞阳县（{COUNTY}）"
        steps = [row[1] for row in workbook["办理过程"].iter_rows(min_row=2, values_only=True)]
        assert steps[:2] == ["创建申报", "县级申报"]
        assert {"市级初审通过（推荐）", "市级初审退回"} <= set(steps)

    async def test_writes_what_a_county_typed_as_text_never_a_formula(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        reviewed: dict[str, Any],
    ) -> None:
        response = await materials(applications, bureau_keys["county_bureau"], reviewed, "xlsx")

        sheet = openpyxl.load_workbook(io.BytesIO(response.content))["申报单位"]
        cells = [row[4] for row in sheet.iter_rows(min_row=2) if row[0].value == VILLAGE]
        assert [(c.value, c.data_type) for c in cells] == [(FORMULA, "s")]


class TestPdf:
    async def test_first_page_shows_the_county_name_and_renders(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        reviewed: dict[str, Any],
        tmp_path: Path,
    ) -> None:
        response = await materials(applications, bureau_keys["province_bureau"], reviewed, "pdf")

        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        document = pypdfium2.PdfDocument(response.content)
        try:
            page = document[0]
            text = page.get_textpage().get_text_range()
            image = page.render(scale=1.5).to_pil().convert("L")
        finally:
            document.close()
        assert "枞阳县" in text and "申报材料" in text
        image.save(tmp_path / "materials-page-1.png")
        dark = sum(image.histogram()[:128])  # pixels darker than mid-grey
        assert dark > 2_000, "the first page rendered (nearly) blank"

    async def test_carries_the_units_the_decisions_and_the_history(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        reviewed: dict[str, Any],
    ) -> None:
        response = await materials(applications, bureau_keys["county_bureau"], reviewed, "pdf")

        text = response_text(response.content)
        assert "枞阳镇" in text and "整改台账不全，请补充后再报" in text
        assert "办理过程" in text and "市级初审退回" in text


def response_text(content: bytes) -> str:
    document = pypdfium2.PdfDocument(content)
    try:
        return "".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


class TestRefusals:
    async def test_an_unknown_format_is_a_problem_and_stores_nothing(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        reviewed: dict[str, Any],
        db: Database,
    ) -> None:
        before = await stored(db, PERIOD)

        response = await materials(applications, bureau_keys["county_bureau"], reviewed, "docx")

        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] == "format"
        assert await stored(db, PERIOD) == before

    async def test_a_bureau_of_another_county_may_not_read_them(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        reviewed: dict[str, Any],
    ) -> None:
        for key in ("other_county_bureau", "other_city_bureau", "sibling_reader"):
            response = await materials(applications, bureau_keys[key], reviewed, "pdf")
            assert response.status_code == 403, (key, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_application_is_not_found(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str]
) -> None:
    response = await materials(
        applications,
        bureau_keys["county_bureau"],
        {"application_id": "00000000-0000-4000-8000-000000000000"},
        "xlsx",
    )

    assert response.status_code == 404
