"""The auth router and dependencies on a tiny app, through FastAPI's TestClient, with the console
store on SQLite and on PostgreSQL (`store_at`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Action, Role
from cloud_ingest.registry import areas
from cloud_ingest.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AuthConfig,
    CurrentUser,
    SiteRef,
    auth_router,
    configure_auth,
    csrf_protect,
    install_login_redirect,
    require_area_access,
    require_role,
    require_site_access,
    site_access,
)
from tests.support.console import FAST_HASHER, FakeClock, console_db_with_areas
from tests.support.databases import StoreAt

PW = "xishan-courtyard-77"
_OPENED: list[AuthConfig] = []


@pytest.fixture(autouse=True)
def close_stores() -> Iterator[None]:
    """The apps here run no lifespan: close their console stores after each test."""
    yield
    while _OPENED:
        _OPENED.pop().db.close()


def make_app(db_path: Path | str, clock: FakeClock, secure: bool = False) -> FastAPI:
    app = FastAPI()
    config = AuthConfig(console=db_path, cookie_secure=secure, clock=clock, hasher=FAST_HASHER)
    configure_auth(app, config)
    _OPENED.append(config)
    app.include_router(auth_router)
    install_login_redirect(app)

    @app.get("/api/v1/sites/{site_id}")
    def site(ref: Annotated[SiteRef, Depends(require_site_access)]) -> dict[str, str]:
        return {"site_id": ref.site_id, "area": ref.area_path}

    @app.post("/api/v1/sites/{site_id}/ack", dependencies=[Depends(csrf_protect)])
    def ack(ref: Annotated[SiteRef, Depends(site_access(Action.ACK_ALERT))]) -> dict[str, str]:
        return {"acked": ref.site_id}

    @app.get("/api/v1/users", dependencies=[Depends(require_role(Role.ADMIN))])
    def users() -> list[str]:
        return ["ok"]

    @app.get("/api/v1/areas/{area_path:path}")
    def area(a: Annotated[areas.Area, Depends(require_area_access)]) -> dict[str, str]:
        return {"path": a.path, "name": a.bilingual()}

    @app.get("/overview", response_class=HTMLResponse)
    def overview(user: CurrentUser) -> str:
        return f"<p>{user.username}</p>"

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path, clock: FakeClock, store_at: StoreAt) -> Path | str:
    path = console_db_with_areas(tmp_path, store_at("console"))
    store = AccountStore(path, clock, FAST_HASHER)
    store.add_user("eryuan-mgr", PW, Role.MANAGER, "dali/eryuan")
    store.add_user("eryuan-view", PW, Role.VIEWER, "dali/eryuan")
    store.add_user("er-admin", PW, Role.ADMIN, "dali/er")
    store.close()
    return path


@pytest.fixture
def app(db_path: Path | str, clock: FakeClock) -> FastAPI:
    return make_app(db_path, clock)


def client_for(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


def login(client: TestClient, username: str, password: str = PW) -> str:
    """Log in through the HTML form as a browser would; return the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
    )
    assert r.status_code == 303, r.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    csrf: str = me.json()["csrf_token"]
    return csrf


def test_login_page_is_bilingual_and_self_hosted(app: FastAPI) -> None:
    client = client_for(app)
    r = client.get("/login", params={"next": "/overview"})
    assert r.status_code == 200
    for text in (
        '登录 <span lang="en">Log in',
        "用户名 <span",
        "Username",
        "密码 <span",
        "Password",
    ):
        assert text in r.text
    assert "://" not in r.text  # no CDN, no absolute links: the page works on an intranet
    assert 'value="/overview"' in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert LOGIN_CSRF_COOKIE in r.cookies
    css = client.get("/login.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_login_sets_a_hardened_cookie_and_me_answers(app: FastAPI) -> None:
    client = client_for(app)
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    r = client.post(
        "/login",
        data={
            "username": "Eryuan-Mgr",
            "password": PW,
            "csrf_token": csrf.group(1),
            "next": "/overview",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/overview"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # this app was configured for plain-http development
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == "eryuan-mgr"
    assert body["grants"] == [{"role": "manager", "area": "dali/eryuan"}]
    assert len(body["csrf_token"]) == 64
    assert client.get("/overview").text == "<p>eryuan-mgr</p>"


def test_cookie_is_secure_when_configured(db_path: Path | str, clock: FakeClock) -> None:
    client = TestClient(make_app(db_path, clock, secure=True), base_url="https://testserver")
    client.follow_redirects = False
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login", data={"username": "er-admin", "password": PW, "csrf_token": token.group(1)}
    )
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "Secure" in cookie


def test_json_login_and_wrong_password(app: FastAPI) -> None:
    client = client_for(app)
    client.get("/login")
    csrf = client.cookies[LOGIN_CSRF_COOKIE]
    bad = client.post(
        "/login",
        json={"username": "er-admin", "password": "nope-nope-nope"},
        headers={"X-CSRF-Token": csrf},
    )
    ghost = client.post(
        "/login",
        json={"username": "ghost", "password": "nope-nope-nope"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == ghost.status_code == 401
    assert bad.json() == ghost.json() == {"detail": "用户名或密码错误 Wrong username or password"}
    assert SESSION_COOKIE not in client.cookies
    ok = client.post(
        "/login", json={"username": "er-admin", "password": PW}, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 200
    assert ok.json()["username"] == "er-admin"
    assert SESSION_COOKIE in client.cookies


def test_login_without_the_login_csrf_token_is_refused(app: FastAPI) -> None:
    client = client_for(app)
    no_cookie = client.post("/login", data={"username": "er-admin", "password": PW})
    assert no_cookie.status_code == 403
    client.get("/login")
    forged = client.post(
        "/login", data={"username": "er-admin", "password": PW, "csrf_token": "guess"}
    )
    assert forged.status_code == 403
    assert "表单已过期" in forged.text
    assert SESSION_COOKIE not in client.cookies


def test_login_rate_limit_answers_429_for_known_and_unknown_names(app: FastAPI) -> None:
    client = client_for(app)
    client.get("/login")
    csrf = client.cookies[LOGIN_CSRF_COOKIE]
    codes = {}
    for name in ("er-admin", "ghost"):
        codes[name] = [
            client.post(
                "/login",
                data={"username": name, "password": "wrong-password", "csrf_token": csrf},
            ).status_code
            for _ in range(6)
        ]
    assert codes["er-admin"] == codes["ghost"] == [401] * 5 + [429]
    r = client.post("/login", data={"username": "er-admin", "password": PW, "csrf_token": csrf})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 800
    assert "请" in r.text and "Too many attempts" in r.text


def test_two_console_instances_share_sessions_and_login_limits(
    db_path: Path | str, clock: FakeClock
) -> None:
    """Behind a proxy a user's requests reach any console: each app here has its own engine on
    the one store, as two processes would; a session, a logout and the failure count hold on
    both."""
    one, two = client_for(make_app(db_path, clock)), client_for(make_app(db_path, clock))
    csrf = login(one, "eryuan-mgr")
    two.cookies.set(SESSION_COOKIE, one.cookies[SESSION_COOKIE])
    assert two.get("/api/v1/me").json()["username"] == "eryuan-mgr"
    assert two.get("/api/v1/me").json()["csrf_token"] == csrf
    assert two.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert one.get("/api/v1/me").status_code == 401  # logged out on the other console
    # Wrong passwords on alternate consoles add up to the one limit.
    statuses = []
    for i in range(6):
        client = (one, two)[i % 2]
        client.get("/login")
        statuses.append(
            client.post(
                "/login",
                data={
                    "username": "er-admin",
                    "password": "wrong-password",
                    "csrf_token": client.cookies[LOGIN_CSRF_COOKIE],
                },
            ).status_code
        )
    assert statuses == [401] * 5 + [429]


def test_me_without_session_is_401_and_pages_redirect_to_login(app: FastAPI) -> None:
    client = client_for(app)
    assert client.get("/api/v1/me").status_code == 401
    page = client.get("/overview", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/overview"


def test_other_areas_sites_are_404_not_403(app: FastAPI) -> None:
    client = client_for(app)
    login(client, "eryuan-mgr")
    own = client.get("/api/v1/sites/xs-01")
    assert own.status_code == 200
    assert own.json() == {"site_id": "xs-01", "area": "dali/eryuan/xishan/xs-01"}
    other = client.get("/api/v1/sites/hd-01")
    missing = client.get("/api/v1/sites/no-such-site")
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


def test_area_pages_use_whole_segments(app: FastAPI) -> None:
    client = client_for(app)
    login(client, "er-admin")
    assert client.get("/api/v1/areas/dali/er/haidong").json()["name"] == "海东镇 Haidong"
    assert client.get("/api/v1/areas/dali/eryuan").status_code == 404  # the prefix trap
    assert client.get("/api/v1/areas/dali").status_code == 404  # above the grant
    assert client.get("/api/v1/users").status_code == 200


def test_roles_and_csrf_on_unsafe_requests(app: FastAPI) -> None:
    viewer = client_for(app)
    viewer_csrf = login(viewer, "eryuan-view")
    r = viewer.post("/api/v1/sites/xs-01/ack", headers={"X-CSRF-Token": viewer_csrf})
    assert r.status_code == 403  # may see the site, may not act on it
    assert viewer.get("/api/v1/users").status_code == 403

    manager = client_for(app)
    csrf = login(manager, "eryuan-mgr")
    assert manager.post("/api/v1/sites/xs-01/ack").status_code == 403  # no token
    wrong = manager.post("/api/v1/sites/xs-01/ack", headers={"X-CSRF-Token": viewer_csrf})
    assert wrong.status_code == 403  # another session's token
    ok = manager.post("/api/v1/sites/xs-01/ack", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json() == {"acked": "xs-01"}
    form = manager.post("/api/v1/sites/xs-01/ack", data={"csrf_token": csrf})
    assert form.status_code == 200
    # CSRF is checked, but a site in another area still answers 404.
    other = manager.post("/api/v1/sites/hd-01/ack", headers={"X-CSRF-Token": csrf})
    assert other.status_code == 404


def test_logout_needs_csrf_and_kills_the_session_server_side(app: FastAPI) -> None:
    client = client_for(app)
    csrf = login(client, "eryuan-mgr")
    token = client.cookies[SESSION_COOKIE]
    assert client.post("/logout").status_code == 403
    assert client.get("/api/v1/me").status_code == 200
    r = client.post("/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert SESSION_COOKIE not in client.cookies
    replay = client_for(app)
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/api/v1/me").status_code == 401  # a stolen copy of the cookie is dead too


def test_form_logout_redirects_to_login(app: FastAPI) -> None:
    client = client_for(app)
    csrf = login(client, "eryuan-mgr")
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert r.headers["location"] == "login"


def test_session_expires_with_the_clock(app: FastAPI, clock: FakeClock) -> None:
    client = client_for(app)
    login(client, "eryuan-mgr")
    clock.t += 2 * 3600  # idle limit
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_next_cannot_redirect_off_site(app: FastAPI, target: str) -> None:
    client = client_for(app)
    client.get("/login")
    r = client.post(
        "/login",
        data={
            "username": "er-admin",
            "password": PW,
            "csrf_token": client.cookies[LOGIN_CSRF_COOKIE],
            "next": target,
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/"
