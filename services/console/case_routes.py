"""The 信访事项 pages: the desk's registration (一站式接待), a handling body's queue and the cases
under a unit (the fewest days left first, overdue in red), each case with its clocks, every
step and the forms of the steps the key may take, the overdue cases a bureau may supervise, and
the case rates. Every step sends the page's version, so a second click or a stale page does
nothing and says so, showing the case as it is now; a refused step shows why, in Chinese."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import case_forms
from services.console.casing import Casing, Signed
from services.console.pages import render
from services.console.routes import (
    FormDep,
    PlaceDep,
    SessionDep,
    UnitQuery,
    console,
    place_context,
    root_of,
)
from services.console.sessions import Session, SessionStore
from shared.campaign import SHANGHAI
from shared.errors import (
    DomainError,
    InvalidInput,
    OutOfScope,
    PreconditionFailed,
    StateConflict,
)

router = APIRouter(include_in_schema=False)

STALE = (
    "这一事项已经更新过（可能是重复提交，或已有人办理）：刚才的操作没有执行。"
    "下面是它现在的状态，请核对后再办理。"
)
NOT_YOURS = {
    "route": "只有事项所在单位的登记窗口可以转送交办（已交办给处理机构的，由处理机构办理）。",
    "rate": "只有事项属地或首接单位的登记窗口可以记录信访人的评价。",
    "review-request": "只有事项属地或首接单位的登记窗口可以记录复查（复核）请求。",
    "review": "这一事项的复查（复核）由另一个信访局办理。",
    "supervision": "只有事项所在单位的上级信访局可以督办。",
    "close": "只有信访人的登记窗口或上级信访局可以终结这一事项。",
    "agent": "代理员代办由登记窗口或承办的处理机构记录。",
}
HANDLERS_ONLY = "只有事项交办到的处理机构可以办理这一步。"
REGISTRATION_REFUSED = {
    "scope": "该单位不在您的密钥范围内，或您的密钥不能登记信访事项",
    "again": "这张登记表已经登记过另一份内容，不能再改。请打开新的登记表。",
}
# The cases service's refusals of a step that does not fit the case, in Chinese.
CONFLICTS = (
    ("extended once already", "答复期限已经延长过一次，不能再延长。"),
    ("rated already", "答复已经评价过，不能再评价。"),
    ("the case is final", "复核意见已作出，事项为终局，不能再申请。"),
    ("only an overdue case", "只有有逾期环节的事项可以督办。"),
    ("no bureau above", "没有可以复查（复核）这一事项的上级信访局。"),
    ("may still ask for review", "信访人仍在申请复查（复核）的期限内，现在不能终结。"),
    ("follows its case", "这是一件重复信访，随原事项办理：请到原事项办理。"),
    ("limit is running", "这一事项没有正在计算的相应期限。"),
)
CONFLICT = "与这一事项现在的状态不符，没有办成（可能已经办理过）。下面是它现在的状态。"
CaseId = Annotated[uuid.UUID, Path()]
Action = Annotated[str, Path(pattern="^(" + "|".join(case_forms.STEP_FORMS) + ")$")]


def casing(request: Request) -> Casing:
    found: Casing | None = getattr(request.app.state, "casing", None)
    if found is None:
        service = console(request)
        found = request.app.state.casing = Casing(service, service.casework)
    return found


async def signed(request: Request, session: Session) -> Signed:
    """The session, with the body a handler key is of (the key cache knows it)."""
    if session.role != "handler":
        return Signed(session)
    store: SessionStore = request.app.state.sessions
    principal = await store.keys.authenticate(session.authorization)
    return Signed(session, principal.body)


# --- 一站式接待 ---------------------------------------------------------------------------------


@router.get("/cases/new")
async def registration_form(
    request: Request, session: SessionDep, unit: UnitQuery = None
) -> HTMLResponse:
    now = console(request).clock().astimezone(SHANGHAI)
    values = {
        "unit_code": unit or session.scope_code or "",
        "received_at": now.strftime("%Y-%m-%dT%H:%M"),
        "headcount": "1",
    }
    return _registration_page(request, values=values, case_id=str(uuid.uuid4()))


def _registration_page(
    request: Request,
    *,
    values: dict[str, str],
    case_id: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "fields": case_forms.REGISTRATION,
        "values": values,
        "case_id": case_id,
        "errors": errors or {},
    }
    return render(request, "case_new.html", context, status_code=status)


@router.post("/cases")
async def register(request: Request, session: SessionDep, form: FormDep) -> Response:
    case_id = form.get("case_id", "")
    try:
        uuid.UUID(case_id)
    except ValueError:
        raise InvalidInput("the form's case id is not a UUID") from None
    registration = case_forms.registration_of(form, case_id=case_id)
    try:
        case = await casing(request).register(session, registration)
    except (InvalidInput, OutOfScope, StateConflict) as refused:
        errors, status = _registration_refusal(refused)
        return _registration_page(
            request, values=form, case_id=case_id, errors=errors, status=status
        )
    return RedirectResponse(f"/cases/{case.case_id}", status_code=303)


def _registration_refusal(refused: DomainError) -> tuple[dict[str, str], int]:
    if isinstance(refused, InvalidInput):
        errors = case_forms.case_errors(refused.errors, detail=refused.detail)
        return errors or {"": "填写有误：" + refused.detail}, 422
    if isinstance(refused, OutOfScope):
        return {"unit_code": REGISTRATION_REFUSED["scope"]}, 403
    return {"": REGISTRATION_REFUSED["again"]}, 409


# --- lists --------------------------------------------------------------------------------------


@router.get("/cases")
async def case_list(request: Request, session: SessionDep, unit: UnitQuery = None) -> HTMLResponse:
    who = await signed(request, session)
    root = None if who.role == "handler" else root_of(request, session, unit)
    cases = await casing(request).listing(who, root=root)
    context = {
        "root": console(request).unit(root or console(request).home(session)),
        "body": who.body,
        "cases": cases,
        "today": console(request).today(),
    }
    return render(request, "cases.html", context)


@router.get("/cases/overdue")
async def overdue_list(
    request: Request, session: SessionDep, unit: UnitQuery = None
) -> HTMLResponse:
    root = root_of(request, session, unit)
    cases = await casing(request).overdue(session, root=root)
    context = {"root": console(request).unit(root), "cases": cases}
    return render(request, "cases_overdue.html", context)


@router.get("/cases/rates")
async def case_rates(request: Request, session: SessionDep, place: PlaceDep) -> HTMLResponse:
    found = await casing(request).rates(session, root=place.root, period=place.period)
    context = place_context(request, place) | {"rates": found}
    return render(request, "case_rates.html", context)


# --- a case -------------------------------------------------------------------------------------


@router.get("/cases/{case_id}")
async def case_page(request: Request, session: SessionDep, case_id: CaseId) -> HTMLResponse:
    return await _case_page(request, session, case_id)


async def _case_page(
    request: Request,
    session: Session,
    case_id: uuid.UUID,
    *,
    acted: str = "",
    values: dict[str, str] | None = None,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The case as it is now; after a refused step, with why and its form as sent."""
    case = await casing(request).case(session, case_id)
    context = {
        "case": case,
        "offered": casing(request).offered(case),
        "forms": case_forms.STEP_FORMS,
        "acted": acted,
        "values": values if errors else {},
        "notice": notice,
        "errors": errors or {},
        "now": _now_field(request),
    }
    return render(request, "case.html", context, status_code=status)


def _now_field(request: Request) -> str:
    moment: datetime = console(request).clock()
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


@router.post("/cases/{case_id}/{action}")
async def take_step(
    request: Request,
    session: SessionDep,
    form: FormDep,
    case_id: CaseId,
    action: Action,
) -> Response:
    spec = case_forms.STEP_FORMS[action]
    try:
        await casing(request).act(
            session,
            case_id=case_id,
            step=spec.step,
            version=form.get("version", ""),
            body=case_forms.step_of(action, form),
        )
    except PreconditionFailed:
        return await _case_page(request, session, case_id, notice=STALE, status=412)
    except (InvalidInput, StateConflict, OutOfScope) as refused:
        errors, status = _step_refusal(refused, action)
        return await _case_page(
            request, session, case_id, acted=action, values=form, errors=errors, status=status
        )
    back = "/cases/overdue" if form.get("back") == "overdue" else f"/cases/{case_id}"
    return RedirectResponse(back, status_code=303)


def _step_refusal(refused: DomainError, action: str) -> tuple[dict[str, str], int]:
    if isinstance(refused, InvalidInput):
        errors = case_forms.case_errors(refused.errors, detail=refused.detail, action=action)
        return errors or {"": "填写有误：" + refused.detail}, 422
    if isinstance(refused, OutOfScope):
        return {"": NOT_YOURS.get(action, HANDLERS_ONLY)}, 403
    said = next((words for clue, words in CONFLICTS if clue in refused.detail), CONFLICT)
    return {"": said}, 409
