"""The application materials (申报材料): an XLSX with the Chinese headings and one row per unit,
and a PDF whose first page, rendered to an image, shows the county's name; the longest texts
the API accepts printed whole over as many pages as they need; each file rendered once per
version of the application, and kept by no cache on the way."""

import io
import re
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pypdfium2
import pytest
from prometheus_client import REGISTRY

from services.applications.materials import UNIT_HEADINGS
from shared.db import Database
from tests.conftest import COUNTY, TOWNSHIP, VILLAGE
from tests.support.app import bearer
from tests.support.applications import act, decisions, proposed, stored

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
        assert by_code[TOWNSHIP][UNIT_HEADINGS.index("审核意见")] == "整改台账不全，请补充后再报"
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
        # The units at a glance: each with its state and its flag (none here).
        assert f"{TOWNSHIP} 枞阳镇 乡镇（街道） 市级退回 无\r\n" in text
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


def renders(file_format: str) -> float:
    labels = {"format": file_format}
    return REGISTRY.get_sample_value("sanwu_applications_material_renders_total", labels) or 0.0


SENTENCE = "{prefix}{number:04d}句：全年无越级上访、无集体上访。"
# The steps table's headings, drawn again at the top of each page a step's row goes on over.
STEP_HEADINGS = "时间（北京时间）办理环节单位代码单位名称办理人理由"


def numbered(prefix: str, *, length: int) -> str:
    """Text of exactly `length` characters: numbered sentences, each findable in the PDF."""
    count = length // 10
    return "".join(SENTENCE.format(prefix=prefix, number=i) for i in range(count))[:length]


def sentences(prefix: str, text: str) -> set[str]:
    """The whole sentences of the text, by their number."""
    return set(re.findall(re.escape(prefix) + r"(\d{4})句：全年无越级上访、无集体上访。", text))


LONGEST_SELF_EVALUATION = 20_000  # services/applications/schemas.py
LONGEST_REASON = 2_000  # shared/events.py, Reason


class TestLongestTexts:
    async def test_print_whole_over_the_pages_they_need_once_per_version(
        self,
        applications: httpx.AsyncClient,
        bureau_keys: dict[str, str],
        tmp_path: Path,
    ) -> None:
        county, city = bureau_keys["county_bureau"], bureau_keys["city_bureau"]
        village_2 = "340722100202"
        units = proposed(VILLAGE, village_2)
        units[0]["self_evaluation"] = numbered("自评", length=LONGEST_SELF_EVALUATION)
        units[1]["self_evaluation"] = "控制字符\x0b与\x1b也照样成文"
        # More than a spreadsheet cell holds, once joined: 9 × 4,000 characters.
        units[0]["rectifications"] = [numbered(f"整改{i}", length=4_000) for i in range(9)]
        created = await applications.post(
            "/v1/applications",
            json={"period": "a-long-texts", "units": units},
            headers=bearer(county),
        )
        assert created.status_code == 201, created.text
        submitted = await act(applications, county, application=created.json(), action="submit")
        reason = numbered("理由", length=LONGEST_REASON)
        review = {
            "decisions": [
                {"code": VILLAGE, "decision": "approve"},
                {"code": village_2, "decision": "return", "reason": reason},
            ]
        }
        reviewed = await act(
            applications, city, application=submitted.json(), action="review", body=review
        )
        assert reviewed.status_code == 200, reviewed.text
        before = renders("pdf")

        first = await materials(applications, county, reviewed.json(), "pdf")
        again = await materials(applications, county, reviewed.json(), "pdf")

        assert first.status_code == again.status_code == 200, first.text
        assert first.headers["cache-control"] == "no-store"
        assert renders("pdf") == before + 1 and again.content == first.content
        document = pypdfium2.PdfDocument(first.content)
        try:
            pages = len(document)
            text = "".join(
                "".join(page.get_textpage().get_text_range().split()) for page in document
            ).replace(STEP_HEADINGS, "")
            document[pages - 1].render(scale=1).to_pil().save(tmp_path / "last-page.png")
        finally:
            document.close()
        assert pages > 3
        # Every sentence of the self-evaluation and of the reason (the unit's decision and the
        # step's), nothing cut off.
        self_evaluation = units[0]["self_evaluation"]
        assert sentences("自评", text) == sentences("自评", self_evaluation)
        assert sentences("理由", text) == sentences("理由", reason)
        assert len(sentences("自评", self_evaluation)) > 900
        assert text.count(reason[-40:]) == 2
        assert sentences("整改8", text) == sentences("整改8", units[0]["rectifications"][8])
        xlsx = await materials(applications, county, reviewed.json(), "xlsx")
        assert xlsx.status_code == 200 and xlsx.headers["cache-control"] == "no-store"
        cells = openpyxl.load_workbook(io.BytesIO(xlsx.content))["申报单位"]
        by_code = {row[0]: row for row in cells.iter_rows(min_row=2, values_only=True)}
        assert by_code[village_2][4] == "控制字符\ufffd与\ufffd也照样成文"
        rectifications = by_code[VILLAGE][5]
        assert len(rectifications) == 32_767 and rectifications.endswith("全文见PDF申报材料）")

        # A new step is a new version: rendered again, with the step.
        province = bureau_keys["province_bureau"]
        awarded = await act(
            applications,
            province,
            application=reviewed.json(),
            action="award",
            body=decisions("award", VILLAGE),
        )
        assert awarded.status_code == 200, awarded.text
        newer = await materials(applications, county, awarded.json(), "pdf")
        assert renders("pdf") == before + 2 and "省级命名" in response_text(newer.content)


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
            assert COUNTY not in response.text  # the refusal names no unit


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
