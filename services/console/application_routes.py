"""The 申报 pages: the applications under the key's scope; a county bureau's new application
from the eligible list with each unit's self-evaluation, and its submission; the city's review,
the province's award, rejection and revocation; each application's history and materials."""

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.applying import AWAITING, DECISIONS, Applying, decisions_of, unit_errors
from services.console.pages import render, sent_on
from services.console.routes import (
    CODE,
    FormDep,
    PeriodQuery,
    Place,
    SessionDep,
    console,
    period_of,
    place_context,
)
from services.console.sessions import Session
from services.console.views import context_of
from shared.errors import InvalidInput, OutOfScope, PreconditionFailed, StateConflict

router = APIRouter(include_in_schema=False)

STALE = (
    "这份申报已经更新过（可能是重复提交，或已有人办理）：刚才的操作没有执行。"
    "下面是它现在的状态，请核对后再办理。"
)
CONFLICT = "与这份申报现在的状态不符，没有办成（可能已经办理过）。下面是它现在的状态。"
ApplicationId = Annotated[uuid.UUID, Path()]


def applying(request: Request) -> Applying:
    found: Applying | None = getattr(request.app.state, "applying", None)
    if found is None:
        found = request.app.state.applying = Applying(console(request))
    return found


def application_period(request: Request, period: str | None) -> str:
    chosen = period_of(request, period)
    named = applying(request).periods()
    return chosen if chosen in named or not named else named[-1]


def require_stage(request: Request, session: Session, stage: str) -> None:
    if stage not in applying(request).stages(session):
        raise OutOfScope(f"a {session.role} key of this level may not {stage}", reason="role")


@router.get("/applications")
async def application_list(
    request: Request, session: SessionDep, period: PeriodQuery = None
) -> HTMLResponse:
    place = Place(root=console(request).home(session), period=application_period(request, period))
    page = await applying(request).listing(session, root=place.root, period=place.period)
    context = place_context(request, place, periods=applying(request).periods())
    context["stages"] = applying(request).stages(session)
    return render(request, "applications.html", context | context_of(page))


@router.get("/applications/new")
async def new_application(
    request: Request,
    session: SessionDep,
    period: PeriodQuery = None,
    unit: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    require_stage(request, session, "apply")
    chosen = application_period(request, period)
    root = console(request).home(session)
    if unit:
        values = {code: {"self_evaluation": "", "rectifications": ""} for code in unit}
        return _self_evaluation_page(request, period=chosen, values=values)
    candidates = await applying(request).candidates(session, root=root, period=chosen)
    place = Place(root=root, period=chosen)
    context = place_context(request, place, periods=applying(request).periods())
    return render(request, "application_new.html", context | {"candidates": candidates})


def _self_evaluation_page(
    request: Request,
    *,
    period: str,
    values: dict[str, dict[str, str]],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    for code in values:
        if not _is_code(code):
            raise InvalidInput(f"{code!r} is not a unit code")
    context = {"period": period, "values": values, "errors": errors or {}}
    return render(request, "application_units.html", context, status_code=status)


def _is_code(text: str) -> bool:
    return len(text) == 12 and text.isascii() and text.isdigit()


@router.post("/applications")
async def create_application(request: Request, session: SessionDep, form: FormDep) -> Response:
    period = form.get("period", "")
    codes = [c for c in (await request.form()).getlist("unit") if isinstance(c, str)]
    values = {
        code: {
            "self_evaluation": form.get(f"self_evaluation-{code}", ""),
            "rectifications": form.get(f"rectifications-{code}", ""),
        }
        for code in codes
    }
    units = [
        {
            "code": code,
            "self_evaluation": value["self_evaluation"],
            "rectifications": [
                line.strip() for line in value["rectifications"].splitlines() if line.strip()
            ],
        }
        for code, value in values.items()
    ]
    try:
        created = await applying(request).create(session, period=period, units=units)
    except (InvalidInput, StateConflict) as refused:
        errors = unit_errors(refused.errors, codes=codes) or {"": "没有创建：" + refused.detail}
        status = 409 if isinstance(refused, StateConflict) else 422
        return _self_evaluation_page(
            request, period=period, values=values, errors=errors, status=status
        )
    return RedirectResponse(f"/applications/{created}", status_code=303)


@dataclass(frozen=True)
class Acting:
    """An action taken on an application's page: the form it was sent with, and the units it
    names (for the page to say which of them the service refused)."""

    application_id: uuid.UUID
    form: dict[str, str] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)
    stage: str = "apply"

    @property
    def version(self) -> str:
        return self.form.get("version", "")


@router.get("/applications/{application_id}")
async def application_page(
    request: Request, session: SessionDep, application_id: ApplicationId
) -> HTMLResponse:
    return await _application_page(request, session, Acting(application_id))


async def _application_page(
    request: Request,
    session: Session,
    acting: Acting,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The application as it is now; after a refused action, with why and the form as sent."""
    page = await applying(request).application(session, str(acting.application_id))
    context = {
        "stages": applying(request).stages(session),
        "awaiting": AWAITING,
        "decisions": DECISIONS,
        "notice": notice,
        "errors": errors or {},
        "values": acting.form if errors else {},
    }
    return render(request, "application.html", context | context_of(page), status_code=status)


async def _acted(
    request: Request, session: Session, acting: Acting, act: Awaitable[None]
) -> Response:
    """The application's page after an action: its own again (303) when done; with why, and
    the application as it is now, when the service refused it."""
    try:
        await act
    except PreconditionFailed:
        return await _application_page(request, session, acting, notice=STALE, status=412)
    except (InvalidInput, StateConflict) as refused:
        errors = unit_errors(refused.errors, codes=acting.codes, stage=acting.stage)
        conflict = isinstance(refused, StateConflict)
        errors = errors or {"": CONFLICT if conflict else "填写有误：" + refused.detail}
        status = 409 if conflict else 422
        return await _application_page(request, session, acting, errors=errors, status=status)
    return RedirectResponse(f"/applications/{acting.application_id}", status_code=303)


@router.post("/applications/{application_id}/submit")
async def submit_application(
    request: Request, session: SessionDep, form: FormDep, application_id: ApplicationId
) -> Response:
    acting = Acting(application_id, form=form)
    return await _acted(request, session, acting, _act(request, session, acting, "submit"))


@router.post("/applications/{application_id}/{stage}")
async def decide(
    request: Request,
    session: SessionDep,
    form: FormDep,
    application_id: ApplicationId,
    stage: Annotated[str, Path(pattern="^(review|award)$")],
) -> Response:
    decisions = decisions_of(form, stage=stage)
    codes = [d["code"] for d in decisions]
    acting = Acting(application_id, form=form, codes=codes, stage=stage)
    if not decisions:
        errors = {"": "请至少对一个单位作出决定。"}
        return await _application_page(request, session, acting, errors=errors, status=422)
    act = _act(request, session, acting, stage, body={"decisions": decisions})
    return await _acted(request, session, acting, act)


def _act(
    request: Request,
    session: Session,
    acting: Acting,
    action: str,
    *,
    body: dict[str, object] | None = None,
) -> Awaitable[None]:
    return applying(request).applications.act(
        session,
        application_id=str(acting.application_id),
        action=action,
        version=acting.version,
        body=body,
    )


@router.post("/titles/{code}/{period}/revoke")
async def revoke_title(
    request: Request,
    session: SessionDep,
    form: FormDep,
    code: Annotated[str, Path(pattern=CODE)],
    period: Annotated[str, Path(min_length=1, max_length=64)],
) -> Response:
    period_of(request, period)  # a period of the campaign, or a page saying there is none
    try:
        application_id = uuid.UUID(form.get("application_id", ""))
    except ValueError:
        raise InvalidInput("the form names no application") from None
    acting = Acting(application_id, form=form, codes=[code], stage="revoke")
    act = applying(request).applications.revoke(
        session,
        code=code,
        period=period,
        version=acting.version,
        reason=form.get(f"revoke-reason-{code}", "").strip(),
    )
    return await _acted(request, session, acting, act)


@router.get("/applications/{application_id}/materials")
async def materials(
    request: Request,
    session: SessionDep,
    application_id: ApplicationId,
    file_format: Annotated[str, Query(alias="format", pattern="^(pdf|xlsx)$")] = "pdf",
) -> Response:
    file = await applying(request).applications.materials(
        session, application_id=str(application_id), file_format=file_format
    )
    return sent_on(file)
