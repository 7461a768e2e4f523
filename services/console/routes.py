"""The pages. Each reads what it shows through the services with the signed-in user's key;
every form carries the session's CSRF token, checked before anything is sent on."""

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import forms
from services.console.oidc_routes import after_sign_out
from services.console.pages import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    CsrfRefused,
    delete_cookie,
    read_cookie,
    render,
    sent_on,
    set_cookie,
)
from services.console.service import SORT_KEYS, ConsoleService
from services.console.sessions import Session, SessionStore, tokens_match
from services.console.views import EventPage, context_of
from shared.access import refusals
from shared.access.service import OUTSIDE, claimed_key_id
from shared.errors import (
    DomainError,
    EventConflict,
    InvalidInput,
    OutOfScope,
    PeriodNotFound,
    RateLimited,
    Unauthenticated,
)
from shared.levels import CAMPAIGN_LEVELS

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

CODE = r"^[0-9]{12}$"
UnitQuery = Annotated[str | None, Query(pattern=CODE)]
PeriodQuery = Annotated[str | None, Query(max_length=64)]
LevelQuery = Annotated[str, Query(pattern="^(county|township|village)$")]
CAMPAIGN_LEVEL_NAMES = [level.value for level in CAMPAIGN_LEVELS]
SIGNIN_NOTICES = {
    "expired": "会话已结束，请重新登录。",
    "revoked": "密钥已被吊销或已过期，会话已结束。",
    "signed_out": "已退出。",
}


def console(request: Request) -> ConsoleService:
    service: ConsoleService = request.app.state.console
    return service


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


async def current_session(request: Request) -> Session:
    store: SessionStore = request.app.state.sessions
    session = await store.current(read_cookie(request, SESSION_COOKIE), address=_address(request))
    if session is None:
        raise Unauthenticated("no session", reason="missing")
    request.state.session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


async def checked_form(request: Request, session: SessionDep) -> dict[str, str]:
    """The posted form, once its CSRF token is this session's."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not tokens_match(form.get("csrf_token"), session.csrf_token):
        raise CsrfRefused("the form's token is not this session's")
    return form


FormDep = Annotated[dict[str, str], Depends(checked_form)]


def period_of(request: Request, period: str | None) -> str:
    service = console(request)
    if period is None or period == "":
        return service.default_period()
    if not service.campaign.get().is_period(period):
        raise PeriodNotFound(f"no period {period}")
    return period


def root_of(request: Request, session: Session, unit: str | None) -> str:
    """The unit a page is about: the one asked for, or the key's home."""
    return unit or console(request).home(session)


@dataclass(frozen=True)
class Place:
    """The unit and the period a page is about."""

    root: str
    period: str


async def chosen_place(
    request: Request, session: SessionDep, unit: UnitQuery = None, period: PeriodQuery = None
) -> Place:
    return Place(root=root_of(request, session, unit), period=period_of(request, period))


PlaceDep = Annotated[Place, Depends(chosen_place)]


def place_context(
    request: Request, place: Place, *, periods: list[str] | None = None
) -> dict[str, object]:
    """What every page of a place shows of it, with the periods to choose from."""
    service = console(request)
    return {
        "root": service.unit(place.root),
        "period": place.period,
        "periods": service.periods() if periods is None else periods,
        "campaign_levels": CAMPAIGN_LEVEL_NAMES,
    }


def within_scope(request: Request, session: Session, code: str) -> None:
    service = console(request)
    service.unit(code)
    if session.scope_code and not service.registry.is_within(code, session.scope_code):
        raise OutOfScope(OUTSIDE)


# --- sign in and out ------------------------------------------------------------------------


def home_of(role: str) -> str:
    """A desk key posts events and reads them back, never reports: its home is the form; a
    handling body's is its queue of cases."""
    homes = {"desk": "/record", "handler": "/cases"}
    return homes.get(role, "/overview")


@router.get("/")
async def home(session: SessionDep) -> RedirectResponse:
    return RedirectResponse(home_of(session.role), status_code=303)


@router.get("/signin")
async def signin_page(request: Request, notice: str = "") -> HTMLResponse:
    return _signin_form(request, notice=SIGNIN_NOTICES.get(notice, ""))


def _signin_form(
    request: Request, *, notice: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    token = read_cookie(request, SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "signin.html",
        {"csrf_token": token, "notice": notice, "error": error},
        status_code=status,
    )
    set_cookie(request, response, name=SIGNIN_COOKIE, value=token, max_age=3600)
    return response


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not tokens_match(
        sent, read_cookie(request, SIGNIN_COOKIE) or "\0"
    ):
        raise CsrfRefused("the sign-in form's token does not match its cookie")
    sent_key = form.get("key")
    key = sent_key if isinstance(sent_key, str) else ""
    store: SessionStore = request.app.state.sessions
    try:
        token, session = await store.sign_in(key, address=_address(request))
    except Unauthenticated as refused:
        refusals.record(request, refused, key_id=claimed_key_id(f"Bearer {key.strip()}"))
        return _signin_form(request, error="密钥无效、已吊销或已过期。", status=401)
    except RateLimited as limited:
        log.warning(
            "console_sign_in_limited",
            key_id=claimed_key_id(f"Bearer {key.strip()}"),
            client=_address(request),
            detail=limited.detail,
        )
        return _signin_form(request, error="失败次数过多，请稍后再试。", status=429)
    response = RedirectResponse(home_of(session.role), status_code=303)
    max_age = int(store.lifetime.total_seconds())
    set_cookie(request, response, name=SESSION_COOKIE, value=token, max_age=max_age)
    delete_cookie(request, response, name=SIGNIN_COOKIE)
    return response


@router.post("/signout")
async def signout(request: Request, session: SessionDep, form: FormDep) -> Response:
    store: SessionStore = request.app.state.sessions
    await store.sign_out(session, address=_address(request))
    return await after_sign_out(request, session)


# --- 总览 and drill-down ----------------------------------------------------------------------


@router.get("/overview")
async def overview(
    request: Request,
    session: SessionDep,
    place: PlaceDep,
    sort: Annotated[str, Query(pattern="^(" + "|".join(SORT_KEYS) + ")$")] = "code",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> HTMLResponse:
    service = console(request)
    page = await service.overview(
        session, root=place.root, period=place.period, sort=sort, descending=order == "desc"
    )
    context = place_context(request, place) | {
        "trail": service.trail(session, place.root),
        "sort": sort,
        "order": order,
    }
    return render(request, "overview.html", context | context_of(page))


@router.get("/search")
async def search(
    request: Request,
    session: SessionDep,
    q: Annotated[str, Query(max_length=100)] = "",
    unit: UnitQuery = None,
    period: PeriodQuery = None,
) -> HTMLResponse:
    root = root_of(request, session, unit)
    within_scope(request, session, root)
    found = console(request).search(session, root=root, query=q)
    context = place_context(request, Place(root=root, period=period_of(request, period)))
    return render(request, "search.html", context | {"query": q, "found": found})


@router.get("/units/{code}")
async def unit_page(
    request: Request,
    session: SessionDep,
    code: Annotated[str, Path(pattern=CODE)],
    period: PeriodQuery = None,
) -> HTMLResponse:
    service = console(request)
    chosen = period_of(request, period)
    page = await service.unit_page(session, code=code, period=chosen)
    context = {
        "period": chosen,
        "periods": service.periods(),
        "trail": service.trail(session, code),
    }
    return render(request, "unit.html", context | context_of(page))


@router.get("/events/{event_id}")
async def event_page(request: Request, session: SessionDep, event_id: uuid.UUID) -> HTMLResponse:
    found = await console(request).event_in_log(session, event_id)
    return render_event(request, found, filing=forms.DisputeFiling.new())


def render_event(
    request: Request, page: EventPage, *, filing: forms.DisputeFiling, status: int = 200
) -> HTMLResponse:
    """The event's page, with the form to dispute it (services/console/dispute_routes.py)."""
    context = context_of(page) | {"filing": filing}
    return render(request, "event.html", context, status_code=status)


# --- 可申报名单 and 预警 -------------------------------------------------------------------------


@router.get("/eligible")
async def eligible(
    request: Request, session: SessionDep, place: PlaceDep, level: LevelQuery = "village"
) -> HTMLResponse:
    page = await console(request).eligible(
        session, root=place.root, period=place.period, level=level
    )
    context = place_context(request, place) | {"level": level}
    return render(request, "eligible.html", context | context_of(page))


@router.get("/eligible/download")
async def eligible_download(
    request: Request,
    session: SessionDep,
    place: PlaceDep,
    level: LevelQuery = "village",
    file_format: Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")] = "xlsx",
) -> Response:
    file = await console(request).eligible_file(
        session, root=place.root, period=place.period, level=level, file_format=file_format
    )
    return sent_on(file)


@router.get("/warnings")
async def warnings(request: Request, session: SessionDep, unit: UnitQuery = None) -> HTMLResponse:
    service = console(request)
    root = root_of(request, session, unit)
    items, complete = await service.feeds.warnings(session, root=root)
    context = {"root": service.unit(root), "warnings": items, "complete": complete}
    return render(request, "warnings.html", context)


# --- 登记 --------------------------------------------------------------------------------------


@router.get("/record")
async def record_form(
    request: Request,
    session: SessionDep,
    kind: Annotated[
        str, Query(alias="type", pattern="^(" + "|".join(forms.FORM_TYPES) + ")$")
    ] = "petition_visit",
    unit: UnitQuery = None,
) -> HTMLResponse:
    values = {"unit_code": unit or ""}
    return _record_page(request, session, kind=kind, values=values, event_id=str(uuid.uuid4()))


def _record_page(
    request: Request,
    session: Session,
    *,
    kind: str,
    values: dict[str, str],
    event_id: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "kind": kind,
        "fields": forms.FIELDS[kind],
        "values": values,
        "event_id": event_id,
        "errors": errors or {},
        "form_types": forms.FORM_TYPES,
    }
    return render(request, "record.html", context, status_code=status)


@router.post("/record")
async def record(request: Request, session: SessionDep, form: FormDep) -> Response:
    kind = form.get("type", "")
    event_id = form.get("event_id", "")
    if kind not in forms.FORM_TYPES:
        raise InvalidInput(f"no form for {kind!r}")
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise InvalidInput("the form's event id is not a UUID") from None
    payload = forms.payload_of(kind, form, event_id=event_id)
    try:
        await console(request).record(session, payload)
    except (InvalidInput, OutOfScope, EventConflict) as refused:
        errors, status = _refusal_of(refused)
        return _record_page(
            request,
            session,
            kind=kind,
            values=form,
            event_id=event_id,
            errors=errors,
            status=status,
        )
    return RedirectResponse(f"/record/{quote(event_id)}", status_code=303)


def _refusal_of(refused: DomainError) -> tuple[dict[str, str], int]:
    """Why intake refused the form, by field, and the status the form is shown again with."""
    if isinstance(refused, InvalidInput):
        return forms.field_errors(refused.errors) or {"": "填写有误：" + refused.detail}, 422
    if isinstance(refused, OutOfScope):
        return {"unit_code": "该单位不在您的密钥范围内，不能为它登记"}, 403
    return {"": "这张表单已经登记过另一份内容，不能再改。请打开新的登记表。"}, 409


@router.get("/record/{event_id}")
async def recorded(request: Request, session: SessionDep, event_id: uuid.UUID) -> HTMLResponse:
    found = await console(request).event_in_log(session, event_id)
    return render(request, "recorded.html", context_of(found))
