"""Rendering: the templates with their filters, the cookies, and the error pages. No page
ever shows a stack trace: every failure is a page saying what happened, in Chinese."""

from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console import labels
from services.console.clients.http import Download
from services.console.sessions import Session, SessionStore
from shared.access import refusals
from shared.campaign import SHANGHAI
from shared.errors import (
    DependencyUnavailable,
    DomainError,
    NotFound,
    OutOfScope,
    RateLimited,
    Unauthenticated,
    UnitNotFound,
)

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "sanwu_console"
SIGNIN_COOKIE = "sanwu_console_signin"
HOST_PREFIX = "__Host-"

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["labels"] = labels


class CsrfRefused(DomainError):
    """A form without this session's token: not sent from the console's own page."""

    status = 403
    title = "Form refused"
    slug = "csrf"
    reason = "csrf"


def _local_time(value: str | datetime | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local_time"] = _local_time
templates.env.filters["percent"] = labels.percent
templates.env.filters["level"] = labels.level_name


def period_label(period: str) -> str:
    return "近12个月（滚动）" if period == "rolling" else f"{period}年度考核期"


templates.env.filters["period"] = period_label


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    session: Session | None = getattr(request.state, "session", None)
    registry = request.app.state.registry

    def unit_name(code: str | None) -> str:
        unit = registry.get_cached(code) if code else None
        return unit.name if unit else (code or "—")

    base = {
        "session": session,
        "scope_name": _scope_name(request, session),
        "unit_name": unit_name,
    }
    response = templates.TemplateResponse(request, name, base | context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def sent_on(file: Download) -> Response:
    """A service's file, handed to the browser as the service named it."""
    headers = {"Content-Disposition": file.disposition, "Cache-Control": "no-store"}
    return Response(file.content, media_type=file.media_type, headers=headers)


def _scope_name(request: Request, session: Session | None) -> str:
    if session is None:
        return ""
    if session.scope_code is None:
        return "全部"
    unit = request.app.state.registry.get_cached(session.scope_code)
    return unit.name if unit else session.scope_code


def secure(request: Request) -> bool:
    """Secure cookies: as configured; unset, always in production, and in local and test runs
    when the request came over HTTPS."""
    settings = request.app.state.settings
    if settings.console_secure_cookies is not None:
        return bool(settings.console_secure_cookies)
    return settings.environment == "production" or request.url.scheme == "https"


def cookie_name(request: Request, name: str) -> str:
    """A secure cookie is `__Host-` prefixed: the browser then takes it only if it is Secure,
    for Path=/ and without a Domain, so no other host (a sibling subdomain) can set or shadow
    it. A cookie over plain HTTP (local and test runs) cannot be Secure, nor so prefixed."""
    return HOST_PREFIX + name if secure(request) else name


def read_cookie(request: Request, name: str) -> str | None:
    return request.cookies.get(cookie_name(request, name))


def set_cookie(
    request: Request, response: Response, *, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def delete_cookie(request: Request, response: Response, *, name: str) -> None:
    response.delete_cookie(
        cookie_name(request, name),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def to_signin(request: Request, *, notice: str = "") -> RedirectResponse:
    target = "/signin" + (f"?notice={notice}" if notice else "")
    response = RedirectResponse(target, status_code=303)
    delete_cookie(request, response, name=SESSION_COOKIE)
    return response


# --- error pages ----------------------------------------------------------------------------

ERROR_TITLES = {
    400: "请求有误",
    403: "无权查看",
    404: "没有找到",
    409: "与当前状态冲突",
    412: "内容已被他人更新",
    428: "缺少版本号",
    422: "填写有误",
    429: "操作过于频繁",
    503: "服务暂不可用",
}


def error_page(request: Request, *, status: int, title: str, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


def _message_of(exc: DomainError) -> str:
    if isinstance(exc, UnitNotFound):
        return "单位登记册中没有这个单位，或该单位不参加三无考核。请检查单位代码。"
    if isinstance(exc, OutOfScope):
        return "您的密钥无权查看或办理这一项：它不在密钥的范围（或角色）之内。"
    if isinstance(exc, DependencyUnavailable):
        return f"{exc.dependency}暂时无法访问，请稍后再试。已填写的内容没有提交。"
    if isinstance(exc, RateLimited):
        return f"请在 {exc.retry_after} 秒后再试。"
    if isinstance(exc, CsrfRefused):
        return "表单已失效（不是从本页面提交，或页面已过期）。请返回重新打开页面后再提交。"
    if isinstance(exc, NotFound):
        return "没有找到要查看的内容（单位、事件、考核期、申报、异议或信访事项）。"
    return "请求没有办成：" + exc.detail


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Unauthenticated | OutOfScope | CsrfRefused):
        # Into the same record as the services' refusals, with the session's key if any.
        session: Session | None = getattr(request.state, "session", None)
        refusals.record(request, exc, key_id=session.key_id if session else None)
    if isinstance(exc, Unauthenticated):
        return await _signed_out(request, exc)
    if isinstance(exc, DependencyUnavailable):
        log.warning("console_dependency_unavailable", dependency=exc.dependency, reason=exc.reason)
    status = exc.status if exc.status in ERROR_TITLES else 400
    return error_page(request, status=status, title=ERROR_TITLES[status], message=_message_of(exc))


async def _signed_out(request: Request, exc: Unauthenticated) -> Response:
    """A key refused by a service (revoked or expired since sign-in) ends every session of
    that key; any other missing session goes to the sign-in page."""
    session: Session | None = getattr(request.state, "session", None)
    store: SessionStore = request.app.state.sessions
    if session is not None:
        await store.end_sessions_of(session.key_id)
    if exc.reason == "missing":
        return to_signin(request, notice="expired" if read_cookie(request, SESSION_COOKIE) else "")
    return to_signin(request, notice="revoked")


async def _bad_request(request: Request, exc: Exception) -> Response:
    return error_page(
        request,
        status=400,
        title=ERROR_TITLES[400],
        message="链接中的参数有误（单位代码应为12位数字）。",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_page(request, status=404, title=ERROR_TITLES[404], message="没有这个页面。")
    if exc.status_code == 405:
        return error_page(
            request, status=405, title="不支持的操作", message="此页面不支持这种操作。"
        )
    return error_page(request, status=exc.status_code, title="请求有误", message="请求没有办成。")


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.exception("console_unhandled_error", error=str(exc))
    return error_page(
        request,
        status=500,
        title="系统出错",
        message="系统出了点问题，请稍后再试；如反复出现，请联系管理员。",
    )


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
