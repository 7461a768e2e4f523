"""Sign-in through the identity provider (docs/sign-in.md): `/signin/oidc` sends the browser to
the provider, `/signin/oidc/callback` checks what comes back and opens a session, and the
provider's sign-out comes back to `/signin/oidc/signed-out`.

Between the first two the browser keeps the sign-in's state, nonce and PKCE verifier in a cookie
sealed with a key derived from the client secret. That cookie is SameSite=Lax: the callback is a
navigation from the provider's site, on which a Strict cookie would not be sent. For the same
reason the callback answers with a page that moves on by itself rather than a redirect: the
session cookie (Strict) then goes with the next page, asked for from the console's own page.
"""

import base64
import binascii
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from services.console.config import ConsoleSettings
from services.console.oidc import PENDING_SECONDS, OidcClient, Pending, SignInRefused
from services.console.pages import (
    SESSION_COOKIE,
    cookie_name,
    delete_cookie,
    error_page,
    render,
    secure,
    set_cookie,
    to_signin,
)
from services.console.sessions import Session, SessionStore, seal, unseal

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

PENDING_COOKIE = "sanwu_console_oidc"
CALLBACK = "/signin/oidc/callback"
SIGNED_OUT = "/signin/oidc/signed-out"
ProviderText = Annotated[str, Query(max_length=4096)]
TITLES = {400: "请求有误", 403: "无法登录", 503: "服务暂不可用"}
MESSAGES = {
    "state": "登录请求已失效，或不是从本浏览器发起的。请回到登录页重新登录。",
    "denied": "统一身份认证没有完成登录。请回到登录页重新登录。",
    "provider": "统一身份认证服务暂时无法访问，请稍后再试，或使用接口密钥登录。",
    "token": "身份令牌无效（签名、签发方、受众或有效期不符），登录被拒绝。",
    "claims": "您的账号没有配置本系统可用的角色和所属单位，无法登录。"
    "请联系管理员在统一身份认证中为账号配置角色和单位。",
}


def oidc_of(request: Request) -> OidcClient:
    """The app's client of the provider, made at first use; 404 when none is configured."""
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        settings: ConsoleSettings = request.app.state.settings
        if not settings.oidc_enabled:
            raise HTTPException(404)
        sessions: SessionStore = request.app.state.sessions
        client = OidcClient(settings, clock=sessions.clock)
        request.app.state.oidc = client
    return client


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _base_url(request: Request) -> str:
    settings: ConsoleSettings = request.app.state.settings
    return (settings.console_public_url or str(request.base_url)).rstrip("/")


@router.get("/signin/oidc")
async def signin_oidc(request: Request) -> Response:
    oidc = oidc_of(request)
    try:
        target, pending = await oidc.begin(_base_url(request) + CALLBACK)
    except SignInRefused as refused:
        return _refusal(request, refused)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie_name(request, PENDING_COOKIE),
        _sealed(oidc, pending),
        max_age=PENDING_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    return response


@router.get(CALLBACK)
async def signin_oidc_callback(
    request: Request, code: ProviderText = "", state: ProviderText = "", error: ProviderText = ""
) -> Response:
    oidc = oidc_of(request)
    store: SessionStore = request.app.state.sessions
    try:
        pending = _pending(request, oidc)
        if error:
            raise SignInRefused("denied", f"the provider answered {error!r}")
        if pending is None or not code or not pending.matches(state, now=store.clock().timestamp()):
            raise SignInRefused("state", "no sign-in of this browser has this state")
        person = await oidc.finish(
            code=code, pending=pending, redirect_uri=_base_url(request) + CALLBACK
        )
        if await request.app.state.registry.get(person.unit) is None:
            raise SignInRefused("claims", f"unit claim {person.unit} names no unit")
    except SignInRefused as refused:
        return _refusal(request, refused)
    token, _ = await store.sign_in_as(person, address=_address(request))
    # "/" goes on to the role's home page, as after a key sign-in.
    response = _moving_on(request, "/", title="登录成功")
    max_age = int(store.lifetime.total_seconds())
    set_cookie(request, response, name=SESSION_COOKIE, value=token, max_age=max_age)
    _forget_pending(request, response)
    return response


@router.get(SIGNED_OUT)
async def signed_out_at_provider(request: Request) -> RedirectResponse:
    return to_signin(request, notice="signed_out")


async def after_sign_out(request: Request, session: Session) -> Response:
    """The answer to a sign-out: for a session the provider signed in, a page that sends the
    browser to end its session there too (and back to the sign-in page); otherwise the sign-in
    page. A page rather than a redirect: the console's pages post forms only to the console
    (form-action 'self'), which covers where a form's answer redirects to."""
    settings: ConsoleSettings = request.app.state.settings
    if session.id_token is None or not settings.oidc_enabled:
        return to_signin(request, notice="signed_out")
    try:
        target = await oidc_of(request).end_session_url(
            id_token=session.id_token, post_logout_redirect_uri=_base_url(request) + SIGNED_OUT
        )
    except SignInRefused as refused:
        log.warning("console_oidc_sign_out_local_only", detail=refused.detail)
        target = None
    if target is None:
        return to_signin(request, notice="signed_out")
    response = _moving_on(request, target, title="正在退出统一身份认证")
    delete_cookie(request, response, name=SESSION_COOKIE)
    return response


def _moving_on(request: Request, target: str, *, title: str) -> HTMLResponse:
    return render(request, "oidc_continue.html", {"target": target, "title": title})


def _refusal(request: Request, refused: SignInRefused) -> HTMLResponse:
    log.warning(
        "console_oidc_sign_in_refused",
        reason=refused.reason,
        detail=refused.detail,
        client=_address(request),
    )
    status = refused.status
    response = error_page(
        request, status=status, title=TITLES[status], message=MESSAGES[refused.reason]
    )
    _forget_pending(request, response)
    return response


def _sealed(oidc: OidcClient, pending: Pending) -> str:
    return base64.urlsafe_b64encode(seal(pending.dumps(), _pending_key(oidc))).decode()


def _pending(request: Request, oidc: OidcClient) -> Pending | None:
    text = request.cookies.get(cookie_name(request, PENDING_COOKIE))
    if not text:
        return None
    try:
        opened = unseal(base64.urlsafe_b64decode(text), _pending_key(oidc))
    except (ValueError, binascii.Error):
        return None
    return None if opened is None else Pending.loads(opened)


def _pending_key(oidc: OidcClient) -> str:
    return "oidc-pending:" + oidc.settings.console_oidc_client_secret.get_secret_value()


def _forget_pending(request: Request, response: Response) -> None:
    response.delete_cookie(
        cookie_name(request, PENDING_COOKIE),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
