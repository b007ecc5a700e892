"""Helpers for console tests: areas placing the test sites, users, logged-in HTTP clients, and
headless Chromium (the `browser` and `shots` fixtures of conftest.py use these)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import text
from starlette.routing import Mount

from cloud_ingest.console import db as console_db
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Role
from cloud_ingest.registry import areas
from cloud_ingest.settings import DatabaseSettings
from cloud_ingest.web.app import create_app
from cloud_ingest.web.routes import health, metrics, registry, reports
from cloud_ingest.web.security import (
    LOGIN_CSRF_COOKIE,
    AuthConfig,
    auth_router,
    configure_auth,
    install_login_redirect,
)
from firmware_gateway.clock import Clock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import UplinkTiming
from kiosk.feedback import LogFeedback
from kiosk.runtime import Kiosk
from tests.support.ingest import Publisher, make_settings, write_registry
from tests.support.stack import Stack
from warmcard.settings import MqttSettings

PASSWORD = "erhai-sunrise-2718"
# Cheap argon2 for tests only; production uses the library's RFC 9106 defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


# Two counties (dali/eryuan, dali/er), each with a township and a courtyard: enough to test
# that a grant on one county reaches its courtyard and not the other's.
AREAS_CSV = """path,name_zh,name_en
dali,大理州,Dali
dali/eryuan,洱源县,Eryuan
dali/eryuan/xishan,西山乡,Xishan
dali/eryuan/xishan/xs-01,西山小院,Xishan Courtyard
dali/er,洱海片区,Erhai
dali/er/haidong,海东镇,Haidong
dali/er/haidong/hd-01,海东小院,Haidong Courtyard
"""


class FakeClock:
    """Seconds since the epoch that move only when a test advances them."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def import_areas(console: console_db.Location, csv_text: str) -> None:
    """Import areas (a CSV's text) into the console store at `console`."""
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "areas.csv"
        csv.write_text(csv_text, encoding="utf-8")
        store = console_db.open_store(console)
        try:
            with store.write() as conn:
                areas.import_areas_csv(conn, csv)
        finally:
            store.close()


def console_db_with_areas(tmp_path: Path, console: Path | str | None = None) -> Path | str:
    """The console store at `console` (default: a new file in `tmp_path`) holding the AREAS_CSV
    areas; returns where it is."""
    location = console if console is not None else tmp_path / "console.db"
    import_areas(location, AREAS_CSV)
    return location


def auth_config(console: Path | str) -> AuthConfig:
    """Plain-http cookies (the tests talk to 127.0.0.1) and the cheap hasher."""
    return AuthConfig(console=console, cookie_secure=False, hasher=FAST_HASHER)


def place_sites(console: console_db.Location, placements: dict[str, str]) -> None:
    """Create the areas of each `site_id -> township path` (with parents) and place the sites."""
    rows = {}
    for site_id, township in placements.items():
        for path in areas.ancestors(township, include_self=True)[1:]:
            slug = areas.segments(path)[-1]
            rows[path] = (path, f"{slug}区", slug.title())
        rows[f"{township}/{site_id}"] = (f"{township}/{site_id}", f"{site_id}院", site_id)
    import_areas(
        console, "path,name_zh,name_en\n" + "".join(",".join(r) + "\n" for r in rows.values())
    )


def add_user(console: Path | str, username: str, role: Role, area: str) -> str:
    """Create a user with one grant; returns the password."""
    store = AccountStore(console, time.time, FAST_HASHER)
    try:
        store.add_user(username, PASSWORD, role, area)
    finally:
        store.close()
    return PASSWORD


def console_rows(
    console: Path | str,
    sql: str,
    params: dict[str, Any] | list[dict[str, Any]] | None = None,
    *,
    write: bool = False,
) -> list[tuple[Any, ...]]:
    """Rows of one statement on the console store (SQLite or PostgreSQL), as tuples; `write`
    runs it in the store's write transaction (a list of params: once per dict)."""
    store = console_db.open_store(console)
    try:
        with store.write() if write else store.read() as conn:
            result = conn.execute(text(sql), params or {})
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        store.close()


def login(client: httpx.Client | TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form as a browser does; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None and client.cookies.get(LOGIN_CSRF_COOKIE)
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
    )
    assert r.status_code == 303, r.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    csrf: str = me.json()["csrf_token"]
    return csrf


def logged_in(base_url: str, username: str, password: str = PASSWORD) -> httpx.Client:
    """An httpx client holding a session cookie of `username`."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
    login(client, username, password)
    return client


def login_csrf(client: httpx.Client) -> str:
    """GET /login for the login CSRF cookie, which a login post must echo."""
    assert client.get("/login").status_code == 200
    return str(client.cookies[LOGIN_CSRF_COOKIE])


def simultaneous_logins(url: str, logins: Sequence[tuple[str, str, str | None]]) -> list[int]:
    """JSON logins of (username, password, client address or None), each on its own connection,
    all sent the moment the last is ready; their statuses in the same order."""
    clients = [
        httpx.Client(
            base_url=url,
            timeout=120,
            transport=httpx.HTTPTransport(local_address=address) if address else None,
        )
        for _, _, address in logins
    ]
    tokens = [login_csrf(c) for c in clients]
    start = threading.Barrier(len(logins))
    statuses = [0] * len(logins)

    def attempt(i: int) -> None:
        start.wait()
        username, password, _ = logins[i]
        r = clients[i].post(
            "/login",
            json={"username": username, "password": password},
            headers={"X-CSRF-Token": tokens[i]},
        )
        statuses[i] = r.status_code

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(logins))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for c in clients:
        c.close()
    return statuses


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run the app on a real uvicorn (lifespan on) in a thread; yields its base URL."""
    # Bind first and hand uvicorn the socket: no window for another process to take the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive()


# ---------------------------------------------------------------- in-process console apps

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
USERS = {
    "mgr-a": (Role.MANAGER, "dali/dalishi/xizhou"),
    "view-a": (Role.VIEWER, "dali/dalishi/xizhou"),
    "mgr-b": (Role.MANAGER, "dali/dalishi/zhoucheng"),
    "root-admin": (Role.ADMIN, "/"),
}


def console_db_for(tmp: Path, ids: dict[str, str], console: Path | str | None = None) -> Path | str:
    """Areas: township dali/dalishi/xizhou holds site A, .../zhoucheng site B; the users above.
    In `console` (default: console.sqlite3 in `tmp`); returns where it is."""
    path = console if console is not None else tmp / "console.sqlite3"
    import_areas(
        path,
        "path,name_zh,name_en\n"
        "dali,大理州,Dali\n"
        "dali/dalishi,大理市,Dali city\n"
        "dali/dalishi/xizhou,喜洲镇,Xizhou\n"
        f"dali/dalishi/xizhou/{ids['site_a']},喜洲小院,Xizhou courtyard\n"
        "dali/dalishi/zhoucheng,周城村,Zhoucheng\n"
        f"dali/dalishi/zhoucheng/{ids['site_b']},周城小院,Zhoucheng courtyard\n",
    )
    store = AccountStore(path, lambda: 1_700_000_000.0, FAST_HASHER)
    try:
        for name, (role, area) in USERS.items():
            store.add_user(name, PASSWORD, role, area)
    finally:
        store.close()
    return path


def console_app(service: Stack, console: Path | str) -> FastAPI:
    """What the console shell's create_app will do, minus its own pages and lifespan."""
    app = FastAPI(title="Warmcard console (test)", version="1")
    app.state.service = service.console
    configure_auth(app, auth_config(console))
    app.include_router(auth_router)
    install_login_redirect(app)
    app.include_router(registry.router)
    app.include_router(reports.router)
    app.include_router(metrics.router)
    app.include_router(health.router)
    return app


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, routers included; mounts as MOUNT."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Mount):
            found.add(("MOUNT", route.path))
        elif hasattr(route, "effective_route_contexts"):  # an included router (FastAPI ≥ 0.120)
            for ctx in route.effective_route_contexts():
                found.update((m, ctx.path) for m in ctx.methods - {"HEAD"})
        else:
            found.update((m, route.path) for m in route.methods - {"HEAD"})
    return found


def client_as(app: FastAPI, username: str) -> TestClient:
    """A TestClient logged in as `username`, sending the session's CSRF token on every request."""
    client = TestClient(app, follow_redirects=False)
    client.headers["X-CSRF-Token"] = login(client, username)
    return client


def close_unstarted(service: Stack) -> None:
    """Release what a stack that was never started holds (stop() expects a start)."""
    service.close_unstarted()


def operator_client(service: Stack) -> TestClient:
    """The real app over `service`, logged in as an admin of the whole hierarchy, and a check
    that nobody less gets in: returns the admin's client."""
    db = service.settings.console_db
    place_sites(db, {"ops-site": "dali/xizhou"})
    add_user(db, "ops-root", Role.ADMIN, "/")
    add_user(db, "ops-township", Role.ADMIN, "dali/xizhou")
    app = create_app(service=service.console, auth=auth_config(db))
    township = TestClient(app, follow_redirects=False)
    login(township, "ops-township")
    anonymous = TestClient(app, follow_redirects=False)
    for path in ("/api/v1/reconcile", "/api/v1/deadletters"):
        assert anonymous.get(path).status_code == 401
        assert township.get(path).status_code == 403  # an admin, but not of every area
    client = TestClient(app, follow_redirects=False)
    login(client, "ops-root")
    return client


# ---------------------------------------------------------------- headless Chromium

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} missing: run `make setup` (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_folder(default: Path) -> Path:
    """WARMCARD_SCREENSHOT_DIR (docs/screenshots for the README) or `default`."""
    import os

    folder = Path(os.environ.get("WARMCARD_SCREENSHOT_DIR") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser_page(browser: Browser, *, bypass_csp: bool = False, **context: Any) -> Page:
    """A page in a new context that records script errors, CSP refusals and 4xx/5xx answers in
    `page.errors` (a test asserts it stays empty)."""
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 860}, locale="zh-CN", bypass_csp=bypass_csp, **context
    )
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def browser_login(
    browser: Browser,
    url: str,
    username: str,
    password: str = PASSWORD,
    *,
    path: str = "/",
    bypass_csp: bool = False,
) -> Page:
    """Open `path` without a session, get sent to the login form, log in, land on `path`."""
    page = browser_page(browser, bypass_csp=bypass_csp)
    page.goto(url + path)
    assert "/login" in page.url  # no session: the login page, with ?next=
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + path)
    return page


# ---------------------------------------------------------------- the whole console, running


@dataclasses.dataclass
class LiveConsole:
    """create_app on uvicorn over real Mosquitto and InfluxDB, with the registry of
    ingest_support (site A in Xizhou, site B in Zhoucheng) and the USERS above."""

    url: str
    app: FastAPI
    ids: dict[str, str]
    service: Stack
    publisher: Publisher
    tmp: Path


@contextlib.contextmanager
def live_console(
    tmp: Path,
    mosquitto: Any,
    influxd: Any,
    database: str,
    prefix: str,
    store_url: str | None = None,
    **settings: Any,
) -> Iterator[LiveConsole]:
    """`settings` go to IngestSettings (e.g. alerts=AlertSettings(...), metrics_token=...);
    `store_url` is `[database] url` (the stores in PostgreSQL), `database` InfluxDB's."""
    ids = write_registry(tmp, prefix, store_url, all_day=True)  # its kiosks use the real clock
    if store_url is not None:
        settings["database"] = DatabaseSettings(url=store_url)
    ingest = make_settings(tmp, mosquitto, influxd, database, prefix, **settings)
    console_db_for(tmp, ids, ingest.store("console"))
    app = create_app(ingest, auth=auth_config(ingest.store("console")))
    publisher = Publisher(mosquitto.port)
    try:
        with serve(app) as url, Stack(ingest, console=app.state.service) as service:
            yield LiveConsole(url, app, ids, service, publisher, tmp)
    finally:
        publisher.close()


FAST = UplinkTiming(backoff_min_s=0.05, backoff_max_s=0.3, idle_wait_s=0.1, drain_s=1.0)


@contextlib.contextmanager
def kiosk(
    c: LiveConsole, device: str, port: int, clock: Clock | None = None
) -> Iterator[tuple[Kiosk, SimReader]]:
    """A real Kiosk (simulated reader) on `port`, configured by ingest's downlink; `clock` is
    its clock (default the machine's)."""
    settings = GatewaySettings(
        device_id=device,
        data_dir=c.tmp / "kiosks" / device,
        mqtt=MqttSettings(port=port),
        heartbeat_s=0.5,
        screen_port=None,
    )
    reader = SimReader()
    gateway = Kiosk(
        settings, reader, LogFeedback(), clock, rng=random.Random(1), timing=FAST, tick_s=0.2
    )
    gateway.start()
    try:
        assert gateway.wait_ready(15), "the kiosk got no config or roster from ingest"
        yield gateway, reader
    finally:
        gateway.stop()
