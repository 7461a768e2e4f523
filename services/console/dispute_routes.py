"""The 异议 pages: a counted event disputed from its page by its unit's side (a desk or a
bureau); the disputes under the key's unit and those waiting for its bureau; each dispute with
its every step, decided or reviewed by its bureau, withdrawn or sent for review by its side.
Every action sends the page's version, so a second click or a stale page does nothing and says
so, showing the dispute as it is now."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import forms
from services.console.disputing import ACTIONS, Disputing
from services.console.pages import render
from services.console.routes import FormDep, SessionDep, console, render_event
from services.console.sessions import Session
from services.console.views import EventPage, context_of
from shared.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    OutOfScope,
    PreconditionFailed,
    StateConflict,
)

router = APIRouter(include_in_schema=False)

STALE = (
    "这项异议已经更新过（可能是重复提交，或已有人办理）：刚才的操作没有执行。"
    "下面是它现在的状态，请核对后再办理。"
)
CONFLICT = "与这项异议现在的状态不符，没有办成（可能已经办理过）。下面是它现在的状态。"
NOT_YOURS = (
    "您的密钥无权这样办理这项异议：不是它的决定或复核机关、不是提出方，或新属地不在本局范围之内。"
)
FILING_REFUSED = {
    "live": "这一事件已有异议正在办理，不能再提出。",
    "voided": "这一事件已核销，不能再提出异议。",
    "not_yet": "异议服务还没有收到这一事件（登记后通常几秒内收到），请稍后再提交。",
    "scope": "您的密钥无权对这一事件提出异议：只有事件所属单位及其上级（至县）的登记窗口"
    "或信访局可以提出。",
}
DisputeId = Annotated[uuid.UUID, Path()]
Action = Annotated[str, Path(pattern="^(" + "|".join(ACTIONS) + ")$")]


def disputing(request: Request) -> Disputing:
    found: Disputing | None = getattr(request.app.state, "disputing", None)
    if found is None:
        found = request.app.state.disputing = Disputing(console(request))
    return found


@router.post("/events/{event_id}/disputes")
async def file_dispute(
    request: Request, session: SessionDep, form: FormDep, event_id: uuid.UUID
) -> Response:
    dispute_id = form.get("dispute_id", "")
    try:
        uuid.UUID(dispute_id)
    except ValueError:
        raise InvalidInput("the form's dispute id is not a UUID") from None
    try:
        filed = await disputing(request).file(
            session, forms.filing_of(form, event_id=str(event_id))
        )
    except (InvalidInput, OutOfScope, StateConflict, NotFound) as refused:
        page = await console(request).event_in_log(session, event_id)
        errors, status = _filing_refusal(refused, page)
        filing = forms.DisputeFiling(dispute_id, values=form, errors=errors)
        return render_event(request, page, filing=filing, status=status)
    return RedirectResponse(f"/disputes/{filed.dispute_id}", status_code=303)


def _filing_refusal(refused: DomainError, page: EventPage) -> tuple[dict[str, str], int]:
    """Why the cases service refused the filing, by field, and the status the page is shown
    again with."""
    if isinstance(refused, InvalidInput):
        return forms.dispute_errors(refused.errors) or {"": "填写有误：" + refused.detail}, 422
    if isinstance(refused, OutOfScope):
        return {"": FILING_REFUSED["scope"]}, 403
    if isinstance(refused, NotFound):
        return {"": FILING_REFUSED["not_yet"]}, 404
    voided = page.effect is not None and page.effect.state == "voided"
    return {"": FILING_REFUSED["voided" if voided else "live"]}, 409


@router.get("/disputes")
async def dispute_list(request: Request, session: SessionDep) -> HTMLResponse:
    root = console(request).home(session)
    page = await disputing(request).listing(session, root=root)
    context = {"root": console(request).unit(root)} | context_of(page)
    return render(request, "disputes.html", context)


@router.get("/disputes/{dispute_id}")
async def dispute_page(
    request: Request, session: SessionDep, dispute_id: DisputeId
) -> HTMLResponse:
    return await _dispute_page(request, session, dispute_id)


async def _dispute_page(
    request: Request,
    session: Session,
    dispute_id: uuid.UUID,
    *,
    acted: str = "",
    values: dict[str, str] | None = None,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The dispute as it is now; after a refused action, with why and its form as sent."""
    page = await disputing(request).dispute(session, dispute_id)
    context = {
        "acted": acted,
        "values": values if errors else {},
        "notice": notice,
        "errors": errors or {},
        "reviewer": disputing(request).reviewer_of(page.dispute),
    }
    return render(request, "dispute.html", context | context_of(page), status_code=status)


@router.post("/disputes/{dispute_id}/{action}")
async def act_on_dispute(
    request: Request,
    session: SessionDep,
    form: FormDep,
    dispute_id: DisputeId,
    action: Action,
) -> Response:
    body = forms.ruling_of(form) if ACTIONS[action] else forms.reason_of(form)
    try:
        await disputing(request).act(
            session,
            dispute_id=dispute_id,
            action=action,
            version=form.get("version", ""),
            body=body,
        )
    except PreconditionFailed:
        return await _dispute_page(request, session, dispute_id, notice=STALE, status=412)
    except (InvalidInput, StateConflict, OutOfScope) as refused:
        errors, status = _action_refusal(refused)
        return await _dispute_page(
            request, session, dispute_id, acted=action, values=form, errors=errors, status=status
        )
    return RedirectResponse(f"/disputes/{dispute_id}", status_code=303)


def _action_refusal(refused: DomainError) -> tuple[dict[str, str], int]:
    if isinstance(refused, InvalidInput):
        return forms.dispute_errors(refused.errors) or {"": "填写有误：" + refused.detail}, 422
    if isinstance(refused, OutOfScope):
        return {"": NOT_YOURS}, 403
    return {"": CONFLICT}, 409
