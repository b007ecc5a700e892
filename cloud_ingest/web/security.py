"""Logins for the console: FastAPI dependencies and a mountable router built on accounts.

Wire it into an app with::

    configure_auth(app, AuthConfig(console=settings.store("console")))
    app.include_router(auth_router)

Routes then depend on `current_user`, `require_role(Role.MANAGER)`, `require_site_access`
(404 for sites outside the user's areas) and `csrf_protect` (unsafe methods).
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from string import Template
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import SecretStr

from cloud_ingest import i18n
from cloud_ingest.console import db as console_db
from cloud_ingest.console.accounts import (
    AccountStore,
    Clock,
    LoginLimits,
    LoginRefused,
    Session,
    SessionPolicy,
    csrf_matches,
)
from cloud_ingest.console.roles import Action, Role, User, can
from cloud_ingest.db import Database
from cloud_ingest.errors import AreaError
from cloud_ingest.registry import areas
from cloud_ingest.registry.placement import read_site_path

SESSION_COOKIE = "warmcard_session"
LOGIN_CSRF_COOKIE = "warmcard_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SiteLocator = Callable[[Database, str], str | None]
"""(console store, site_id) -> area path, or None if unknown."""

NOT_FOUND = i18n.both("not_found")
LOGIN_NEEDED = i18n.both("login_needed")
FORBIDDEN = i18n.both("forbidden")
CSRF_FAILED = i18n.both("csrf_failed")
LOGIN_BUSY = i18n.both("login_busy")

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


T = TypeVar("T")


class PasswordChecks:
    """At most `slots` password checks at once in this process, `queue` more waiting; 429 beyond.

    One argon2id check with the RFC 9106 parameters holds 64 MiB and a core for a fraction of a
    second. Unbounded, 100 simultaneous logins took the process to 2.65 GB, and 40 held every
    worker thread so that /healthz waited 6 s. Waiters hold no thread and no memory to speak of.
    Per process on purpose: it bounds this process's memory; the per-username and per-address
    limits live in the database, shared by every process.
    """

    def __init__(self, slots: int = 2, queue: int = 8, wait_s: float = 5.0) -> None:
        self.queue = queue
        self.wait_s = wait_s
        self.limiter = anyio.CapacityLimiter(slots)

    async def run(self, fn: Callable[..., T], *args: Any) -> T | None:
        """fn(*args) on a worker thread once a slot is free; None if the server is too busy."""
        if self.limiter.statistics().tasks_waiting >= self.queue:
            return None
        try:
            with anyio.fail_after(self.wait_s):
                await self.limiter.acquire()
        except TimeoutError:
            return None
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            self.limiter.release()


@dataclass
class AuthConfig:
    """What the auth dependencies need; set once per app with `configure_auth`. Users, sessions
    and login failures live in the console store, shared by every console behind the proxy."""

    console: console_db.Location
    cookie_secure: bool = True  # False only for plain-http development on localhost
    clock: Clock = time.time
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    limits: LoginLimits = field(default_factory=LoginLimits)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    password_checks: PasswordChecks = field(default_factory=PasswordChecks)
    site_locator: SiteLocator = read_site_path
    after_login: str = "/"  # where a login without ?next= lands

    @cached_property
    def db(self) -> Database:
        """The console store, opened (and its schema brought up to date) on first use."""
        return console_db.open_store(self.console)


def configure_auth(app: FastAPI, config: AuthConfig) -> None:
    """Attach the config to the app and open the console store (creating its tables)."""
    _ = config.db
    app.state.warmcard_auth = config


def get_auth_config(request: Request) -> AuthConfig:
    """The app's AuthConfig (override with app.dependency_overrides to inject another)."""
    config = getattr(request.app.state, "warmcard_auth", None)
    if not isinstance(config, AuthConfig):
        raise RuntimeError("console auth is not configured: call configure_auth(app, AuthConfig())")
    return config


def get_account_store(config: AuthConfigDep) -> AccountStore:
    """The accounts over the app's console store; each call takes a pooled connection."""
    return AccountStore(config.db, config.clock, config.hasher, config.limits, config.sessions)


AuthConfigDep = Annotated[AuthConfig, Depends(get_auth_config)]
AccountStoreDep = Annotated[AccountStore, Depends(get_account_store)]


class NotLoggedIn(HTTPException):
    """401: no live session. `install_login_redirect` turns it into a redirect for pages."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, LOGIN_NEEDED)


def optional_session(request: Request, store: AccountStoreDep) -> Session | None:
    """The caller's live session, or None; also kept on request.state for the CSRF check."""
    session = store.session(request.cookies.get(SESSION_COOKIE))
    request.state.warmcard_session = session
    return session


OptionalSessionDep = Annotated[Session | None, Depends(optional_session)]


def current_session(session: OptionalSessionDep) -> Session:
    if session is None:
        raise NotLoggedIn()
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def current_user(session: SessionDep) -> User:
    """The logged-in user; 401 without a live session cookie."""
    return session.user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(role: Role) -> Callable[..., User]:
    """Dependency: the user must hold `role` or higher on some area (object checks come apart)."""

    def dependency(user: CurrentUser) -> User:
        top = user.top_role
        if top is None or top < role:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return user

    return dependency


def require_whole_hierarchy_admin(user: CurrentUser) -> User:
    """Dependency for fleet-wide operator views (reconcile, dead letters): admin at the root."""
    if not can(user, Action.MANAGE_AREAS, areas.ROOT):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    return user


def is_form(request: Request) -> bool:
    """True for a browser's form post (urlencoded or multipart)."""
    ctype = request.headers.get("content-type", "")
    return ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


async def csrf_protect(request: Request, session: SessionDep) -> None:
    """Dependency: unsafe methods must carry the session's token in X-CSRF-Token or csrf_token."""
    if request.method in SAFE_METHODS:
        return
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not csrf_matches(session.csrf_token, submitted):
        raise HTTPException(status.HTTP_403_FORBIDDEN, CSRF_FAILED)


@dataclass(frozen=True)
class SiteRef:
    site_id: str
    area_path: str


def site_access(action: Action = Action.VIEW) -> Callable[..., SiteRef]:
    """Dependency factory for routes with a `{site_id}` path parameter.

    A site the user may not even view answers 404, exactly like a site that does not exist,
    so ids in other areas cannot be probed. A visible site without the right for `action`
    answers 403.
    """

    def dependency(
        site_id: str,
        user: CurrentUser,
        config: AuthConfigDep,
    ) -> SiteRef:
        path = config.site_locator(config.db, site_id)
        if path is None or not can(user, Action.VIEW, path):
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
        if not can(user, action, path):
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return SiteRef(site_id=site_id, area_path=path)

    return dependency


def area_access(action: Action = Action.VIEW) -> Callable[..., areas.Area]:
    """Dependency factory for routes with an `{area_path:path}` parameter; 404 outside."""

    def dependency(
        area_path: str,
        user: CurrentUser,
        config: AuthConfigDep,
    ) -> areas.Area:
        try:
            path = areas.parse_path(area_path)
        except AreaError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
        with config.db.read() as conn:
            area = areas.get_area(conn, path)
        if area is None or not can(user, Action.VIEW, path):
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
        if not can(user, action, path):
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return area

    return dependency


require_site_access = site_access(Action.VIEW)
require_area_access = area_access(Action.VIEW)
SiteAccess = Annotated[SiteRef, Depends(require_site_access)]


def install_login_redirect(app: FastAPI, login_path: str = "/login") -> None:
    """Make NotLoggedIn redirect browsers (Accept: text/html) to the login page; APIs keep 401."""

    async def handler(request: Request, exc: Exception) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{login_path}?next={quote(target)}", status.HTTP_303_SEE_OTHER)
        return JSONResponse({"detail": LOGIN_NEEDED}, status.HTTP_401_UNAUTHORIZED)

    app.add_exception_handler(NotLoggedIn, handler)


# --- the router -------------------------------------------------------------------------

auth_router = APIRouter(tags=["auth"])


def _safe_next(target: str | None, default: str) -> str:
    """Only same-site absolute paths: '/x' yes; '//evil', '/\\evil', 'https://evil' no."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not any(c in target for c in "\r\n\t")
    ):
        return target
    return default


def _client_ip(request: Request) -> str:
    # Behind a reverse proxy, `[api] forwarded_allow_ips` names it and uvicorn makes
    # request.client the real client; trusting any X-Forwarded-For here would let anyone
    # pick a fresh address per attempt and slip the per-address limit.
    return request.client.host if request.client else "unknown"


_TEMPLATE = Template(resources.files("cloud_ingest.web").joinpath("login.html").read_text("utf-8"))
_CSS = resources.files("cloud_ingest.web").joinpath("login.css").read_text("utf-8")


def _login_page(
    config: AuthConfig,
    csrf: str,
    next_path: str,
    username: str = "",
    error: str = "",
    status_code: int = 200,
    extra_headers: dict[str, str] | None = None,
) -> HTMLResponse:
    body = _TEMPLATE.substitute(
        csrf_token=html.escape(csrf),
        next=html.escape(next_path),
        username=html.escape(username),
        error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
    )
    response = HTMLResponse(body, status_code, headers={**PAGE_HEADERS, **(extra_headers or {})})
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="lax",
        secure=config.cookie_secure,
        max_age=3600,
    )
    return response


def _new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


@auth_router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, config: AuthConfigDep, next: str | None = None) -> HTMLResponse:
    """The login form, zh-CN first with English beside it."""
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or _new_login_csrf()
    return _login_page(config, csrf, _safe_next(next, config.after_login))


@auth_router.get("/login.css", include_in_schema=False)
def login_css() -> Response:
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


async def _read_login(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data: Any = json.loads(await request.body())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON object expected")
        return {k: v for k, v in data.items() if isinstance(v, str)}
    if is_form(request):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "form or JSON expected")


def _set_session_cookie(response: Response, config: AuthConfig, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(config.sessions.lifetime_s),
        httponly=True,
        samesite="lax",
        secure=config.cookie_secure,
        path="/",
    )


@auth_router.post("/login", name="login_submit")
async def login(
    request: Request,
    config: AuthConfigDep,
    store: AccountStoreDep,
) -> Response:
    """Form post (redirects) or JSON (answers JSON); both need the login CSRF cookie echoed."""
    as_json = request.headers.get("content-type", "").startswith("application/json")
    data = await _read_login(request)
    username, password = data.get("username", ""), data.get("password", "")
    next_path = _safe_next(data.get("next"), config.after_login)
    cookie_csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    submitted = request.headers.get(CSRF_HEADER) or data.get(CSRF_FIELD)
    # Login CSRF (double submit): a foreign page must not log the victim into its own account.
    if not cookie_csrf or not csrf_matches(cookie_csrf, submitted):
        if as_json:
            raise HTTPException(status.HTTP_403_FORBIDDEN, CSRF_FAILED)
        return _login_page(config, _new_login_csrf(), next_path, username, CSRF_FAILED, 403)

    def answer(code: int, message: str, headers: dict[str, str]) -> Response:
        if as_json:
            return JSONResponse({"detail": message}, code, headers=headers)
        return _login_page(config, cookie_csrf, next_path, username, message, code, headers)

    # The store's write lock may be waited on and argon2 costs a core: neither runs on the
    # event loop.
    ip = _client_ip(request)
    try:
        attempt = await run_in_threadpool(store.claim_login, username, ip)
        user = await config.password_checks.run(store.check_password, attempt, password)
    except LoginRefused as exc:
        if exc.rate_limited:
            return answer(429, str(exc), {"Retry-After": str(int(exc.retry_after_s) + 1)})
        return answer(401, str(exc), {})
    if user is None:
        # Too many passwords being checked at once: this one was never checked, so not counted.
        await run_in_threadpool(store.withdraw, attempt)
        return answer(429, LOGIN_BUSY, {"Retry-After": "2"})
    return await run_in_threadpool(_start_session, request, config, store, user, next_path, as_json)


def _start_session(
    request: Request,
    config: AuthConfig,
    store: AccountStore,
    user: User,
    next_path: str,
    as_json: bool,
) -> Response:
    # A fresh token on every login (no session fixation); drop any session the browser had.
    store.end_session(request.cookies.get(SESSION_COOKIE))
    new = store.start_session(user, _client_ip(request))
    response: Response
    if as_json:
        response = JSONResponse(_me_body(user, new.csrf_token, new.expires_at))
    else:
        response = RedirectResponse(next_path, status.HTTP_303_SEE_OTHER)
    response.headers["Cache-Control"] = "no-store"
    _set_session_cookie(response, config, new.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@auth_router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, store: AccountStoreDep) -> Response:
    """End the session; needs the CSRF token like any other unsafe request."""
    store.end_session(request.cookies.get(SESSION_COOKIE))
    response: Response
    if is_form(request):
        response = RedirectResponse("login", status.HTTP_303_SEE_OTHER)
    else:
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _me_body(user: User, csrf_token: str, expires_at: float) -> dict[str, Any]:
    return {
        "username": user.username,
        "grants": [{"role": g.role.label, "area": g.area} for g in user.grants],
        "csrf_token": csrf_token,
        "expires_at": expires_at,
    }


@auth_router.get("/api/v1/me")
def me(session: SessionDep) -> JSONResponse:
    """Who is logged in, their grants, and the CSRF token scripts send in X-CSRF-Token."""
    return JSONResponse(
        _me_body(session.user, session.csrf_token, session.expires_at),
        headers={"Cache-Control": "no-store"},
    )


def bearer_ok(request: Request, token: SecretStr | None) -> bool:
    """True when the request carries `Authorization: Bearer <token>` (never with no token)."""
    if token is None:
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)
