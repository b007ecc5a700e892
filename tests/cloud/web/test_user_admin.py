# mypy: allow-untyped-defs
"""User administration in the console (/admin/users) on the real app, uvicorn and Chromium: an
admin creates a user, grants a role, the user logs in with the password shown once, the admin
disables them and their next request is refused; a township admin cannot reach the county or
another township's users (404/403); managers get 403; every change leaves an audit row."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog

from cloud_ingest.console.audit import AuditFilter
from cloud_ingest.console.roles import Role
from tests.support.console import LiveConsole, add_user, app_routes, browser_login, logged_in
from tests.support.ingest import wait_for

XIZHOU, ZHOUCHENG = "dali/dalishi/xizhou", "dali/dalishi/zhoucheng"


def account_rows(console: LiveConsole, username: str) -> list[tuple[str, str, int, dict]]:
    """(object, action, status, detail) of `username`'s account rows, oldest first."""
    rows, _ = console.app.state.audit.find(
        AuditFilter(username=username, object_kind="account"), limit=500
    )
    return [(r.object_id, r.action, r.status, json.loads(r.detail)) for r in reversed(rows)]


def form(client: httpx.Client, url: str, **data: str) -> httpx.Response:
    return client.post(url, data={"csrf_token": client.headers["X-CSRF-Token"], **data})


@pytest.fixture
def client_of(console: LiveConsole) -> Iterator[Callable[..., httpx.Client]]:
    """Logs a user in over HTTP (CSRF header set); closes every client after the test."""
    opened: list[httpx.Client] = []

    def login_as(username: str, password: str | None = None) -> httpx.Client:
        client = logged_in(console.url, username, *(password,) if password else ())
        client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
        opened.append(client)
        return client

    yield login_as
    for client in opened:
        client.close()


def test_an_admin_creates_grants_and_disables_a_user_in_chromium(
    browser: Browser, console: LiveConsole, shots: Path
) -> None:
    url = console.url
    admin = browser_login(browser, url, "root-admin", path="/admin/users")
    assert admin.locator("nav [data-nav=users]").count() == 1
    admin.fill("#create-user input[name=username]", "he.xiu")
    admin.select_option("#create-user select[name=role]", "viewer")
    admin.fill("#create-user input[name=area]", XIZHOU)
    admin.click("#create-user button")
    password = admin.locator("#one-time-password").inner_text().strip()
    assert len(password) >= 10 and "密码只显示这一次" in admin.content()
    admin.click("text=返回")
    admin.wait_for_url(f"{url}/admin/users/he.xiu")
    admin.fill("#grant input[name=area]", ZHOUCHENG)
    admin.select_option("#grant select[name=role]", "manager")
    admin.click("#grant button")
    admin.wait_for_url(f"{url}/admin/users/he.xiu")
    assert admin.locator(f"#grants tr[data-area='{ZHOUCHENG}']").inner_text().startswith("管理员")
    admin.goto(f"{url}/admin/users")
    assert admin.locator("#users tr[data-user='he.xiu']").count() == 1
    admin.screenshot(path=str(shots / "console-admin-users.png"), full_page=True)

    # The new user logs in with the password shown, and sees both areas' sites.
    user = browser_login(browser, url, "he.xiu", password)
    me = user.request.get(f"{url}/api/v1/me")
    assert me.status == 200 and me.json()["username"] == "he.xiu"
    assert user.locator("nav [data-nav=users]").count() == 0  # not an admin: no users link

    admin.goto(f"{url}/admin/users/he.xiu")
    asked: list[str] = []

    def answer(accept: bool) -> Callable[[Dialog], None]:
        def respond(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return respond

    admin.once("dialog", answer(False))  # asked first; "cancel" changes nothing
    admin.click("#disable button")
    assert asked and "停用账户 he.xiu" in asked[0]
    assert admin.locator("#user-state").inner_text() != "已停用"
    assert user.request.get(f"{url}/api/v1/me").status == 200
    admin.once("dialog", answer(True))
    admin.click("#disable button")
    admin.wait_for_url(f"{url}/admin/users/he.xiu")
    admin.locator("#user-state", has_text="已停用").wait_for(timeout=5000)
    # The user's very next request is refused: the API says 401, a page goes to the login.
    assert user.request.get(f"{url}/api/v1/me").status == 401
    user.goto(f"{url}/")
    assert "/login" in user.url
    assert admin.errors == []  # type: ignore[attr-defined]

    rows = account_rows(console, "root-admin")
    changes = [(o, s, d) for o, a, s, d in rows if a == "account"]
    assert changes == [
        ("he.xiu", 200, {"role": "viewer", "area": XIZHOU}),
        ("he.xiu", 303, {"grant": "manager", "area": ZHOUCHENG}),
        ("he.xiu", 303, {"change": "disabled"}),
    ]
    assert not any(password in json.dumps(r) for r in rows)


def test_a_township_admin_stays_inside_the_township(console: LiveConsole, client_of) -> None:
    db = console.tmp / "console.sqlite3"
    add_user(db, "xizhou-admin", Role.ADMIN, XIZHOU)
    town = client_of("xizhou-admin")
    page = town.get("/admin/users")
    assert page.status_code == 200
    listed = set(re.findall(r'data-user="([^"]+)"', page.text))
    assert listed == {"mgr-a", "view-a", "xizhou-admin"}  # not mgr-b, not root-admin

    # The county (above the township) and the other township: 404, nothing changed.
    for area in ("dali/dalishi", "dali", "/", ZHOUCHENG):
        r = form(town, "/admin/users/mgr-a/grant", role="viewer", area=area)
        assert r.status_code == 404, (area, r.status_code)
        r = form(town, "/admin/users", username="new.one", role="viewer", area=area)
        assert r.status_code == 404, (area, r.status_code)
    # Users outside the township answer like users that do not exist.
    for name in ("mgr-b", "root-admin", "no.such.user"):
        assert town.get(f"/admin/users/{name}").status_code == 404
        assert form(town, f"/admin/users/{name}/disable").status_code == 404
        assert form(town, f"/admin/users/{name}/password").status_code == 404
    # No self-service lock-out: an admin cannot disable or demote themselves.
    assert form(town, "/admin/users/xizhou-admin/disable").status_code == 403
    assert form(town, "/admin/users/xizhou-admin/revoke", area=XIZHOU).status_code == 403
    # With a viewer grant on the county the admin sees it, but still may not grant on it: 403.
    root = client_of("root-admin")
    assert (
        form(root, "/admin/users/xizhou-admin/grant", role="viewer", area="dali").status_code == 303
    )
    r = form(town, "/admin/users/mgr-a/grant", role="viewer", area="dali/dalishi")
    assert r.status_code == 403
    # Inside the township everything works: grant on the courtyard, then revoke it.
    site_a = f"{XIZHOU}/{console.ids['site_a']}"
    assert form(town, "/admin/users/mgr-a/grant", role="viewer", area=site_a).status_code == 303
    assert form(town, "/admin/users/mgr-a/revoke", area=site_a).status_code == 303
    # A password the admin chooses must pass the policy; it is not shown back.
    r = form(town, "/admin/users/view-a/password", password="admin123456")
    assert r.status_code == 400 and "占位符" in r.text
    r = form(town, "/admin/users/view-a/password", password="cangshan-snow-4471")
    assert r.status_code == 200 and "cangshan-snow-4471" not in r.text
    assert client_of("view-a", "cangshan-snow-4471").get("/").status_code == 200
    # No self-service lock-out: an admin cannot disable or demote themselves.
    assert form(root, "/admin/users/root-admin/disable").status_code == 403
    assert form(root, "/admin/users/root-admin/grant", role="viewer", area="/").status_code == 403
    # A form without the session's CSRF token is refused.
    r = town.post("/admin/users/mgr-a/disable", data={}, headers={"X-CSRF-Token": ""})
    assert r.status_code == 403
    assert client_of("mgr-a").get("/api/v1/me").status_code == 200  # still enabled

    rows = account_rows(console, "xizhou-admin")
    refused = [(o, s, d) for o, a, s, d in rows if a == "account" and s == 404]
    assert ("mgr-a", 404, {"grant": "viewer", "area": "dali/dalishi"}) in refused
    assert ("mgr-b", 404, {"change": "disabled"}) in refused
    done = [(o, d) for o, a, s, d in rows if a == "account" and s == 303]
    assert done == [
        ("mgr-a", {"grant": "viewer", "area": site_a}),
        ("mgr-a", {"revoke": site_a}),
    ]
    assert ("view-a", 200, {"change": "password", "generated": False}) in [
        (o, s, d) for o, a, s, d in rows
    ]


def test_managers_and_viewers_get_403_on_every_admin_route(console: LiveConsole, client_of) -> None:
    admin_routes = {(m, p) for m, p in app_routes(console.app) if p.startswith("/admin/users")}
    assert len(admin_routes) == 8
    for name in ("mgr-a", "view-a"):
        client = client_of(name)
        for method, path in sorted(admin_routes):
            url = path.replace("{username}", "view-a")
            data = {"username": "x.y", "role": "admin", "area": XIZHOU, "password": ""}
            r = form(client, url, **data) if method == "POST" else client.get(url)
            assert r.status_code == 403, (name, method, url, r.status_code)
    assert client_of("view-a").get("/api/v1/me").status_code == 200  # not disabled
    root = client_of("root-admin")
    assert all(root.get(u).status_code == 200 for u in ("/admin/users", "/admin/users/view-a"))


def test_disabling_in_the_console_ends_the_users_live_stream(client_of) -> None:
    viewer = client_of("view-a")
    ended: list[float] = []
    events: list[str] = []

    def listen() -> None:
        with viewer.stream("GET", "/api/v1/overview/stream", timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("event: "):
                    events.append(line)
        ended.append(time.monotonic())

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for(lambda: events)
    root = client_of("root-admin")
    changed = time.monotonic()
    assert form(root, "/admin/users/view-a/disable").status_code == 303
    thread.join(10)
    assert ended and ended[0] - changed < 7.0  # the 5 s re-check, plus slack for a busy machine
    assert viewer.get("/api/v1/me").status_code == 401
