"""The case rates a subtree is judged by (docs/domain.md section 11), read by dashboards
often: the answer is rendered once per computation and the parameters are read by the route."""

from fastapi import APIRouter, Request, Response

from services.cases.cases.rates import Tally
from services.cases.cases.reports import ROLLING, CaseRates, CaseReports
from services.cases.cases.schemas import (
    CODE_PATTERN,
    CaseRatesOut,
    LevelRatesOut,
    RateOut,
    Rates,
    UnitRatesOut,
)
from shared.case_rates import RateName
from shared.query_text import QueryText
from shared.web import get_principal

router = APIRouter(prefix="/v1", tags=["cases"])


def rates_out(rates: dict[RateName, Tally]) -> Rates:
    return {
        name.value: RateOut(
            numerator=t.numerator,
            denominator=t.denominator,
            rate=t.rate,
            not_yet_due=t.not_yet_due,
        )
        for name, t in rates.items()
    }


RATES_ROOT = QueryText("root", "A unit code: the subtree to report on", pattern=CODE_PATTERN)
RATES_PERIOD = QueryText(
    "period",
    "A period of the campaign (e.g. `2026`), or `rolling`: the trailing 12 months",
    required=False,
    min_length=1,
    max_length=64,
    default=ROLLING,
)


@router.get(
    "/reports/case-rates",
    operation_id="getCaseRates",
    response_model=CaseRatesOut,
    responses={
        403: {"description": "Outside the key's scope, or a key that may not read reports"},
        404: {"description": "Unknown unit or period"},
    },
    openapi_extra={"parameters": [RATES_ROOT.documented(), RATES_PERIOD.documented()]},
    summary="The case rates of a subtree in a period",
    description="Each rate as numerator, denominator and rate, with the cases not yet due "
    "apart: for the whole subtree, per level within it and per direct child. A case belongs "
    "to the period its `received_at` falls in (`rolling`: the trailing 12 months) and to "
    "the subtrees of its unit. Readers, bureaus and admins.",
)
async def get_case_rates(request: Request) -> Response:
    # Read here rather than declared (shared/query_text.py): dashboards read the rates often.
    principal = await get_principal(request)
    root = RATES_ROOT.value(request)
    period = RATES_PERIOD.value(request)
    assert root is not None and period is not None
    reports: CaseReports = request.app.state.case_reports
    found = await reports.rates(principal, root=root, period=period)
    if found.rendered is None:  # written once per computation: dashboards read it again
        found.rendered = rates_answer(found).model_dump_json().encode()
    return Response(found.rendered, media_type="application/json")


def rates_answer(found: CaseRates) -> CaseRatesOut:
    return CaseRatesOut(
        root=found.root.code,
        name=found.root.name,
        period=found.period,
        starts_at=found.starts_at,
        ends_at=found.ends_at,
        rates=rates_out(found.rates),
        levels={level: LevelRatesOut(rates=rates_out(r)) for level, r in found.levels.items()},
        children=[
            UnitRatesOut(
                unit_code=c.unit.code,
                name=c.unit.name,
                level=c.unit.level.value,
                rates=rates_out(c.rates),
            )
            for c in found.children
        ],
    )
