"""A console app for tests: auth wired with configure_auth + auth_router, the registry,
report and metrics routers mounted, over an IngestService (started or not) and two areas."""

from __future__ import annotations

import re
from pathlib import Path

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_ingest import areas, console_db
from cloud_ingest.accounts import AccountStore, Role
from cloud_ingest.api.routes import health, metrics, registry, reports
from cloud_ingest.api.security import (
    AuthConfig,
    auth_router,
    configure_auth,
    install_login_redirect,
)
from cloud_ingest.service import IngestService

PW = "courtyard-pass-2468"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
USERS = {
    "mgr-a": (Role.MANAGER, "dali/dalishi/xizhou"),
    "view-a": (Role.VIEWER, "dali/dalishi/xizhou"),
    "mgr-b": (Role.MANAGER, "dali/dalishi/zhoucheng"),
    "root-admin": (Role.ADMIN, "/"),
}


def console_db_for(tmp: Path, ids: dict[str, str]) -> Path:
    """Areas: township dali/dalishi/xizhou holds site A, .../zhoucheng site B; the users above."""
    path = tmp / "console.sqlite3"
    conn = console_db.connect(path)
    csv = tmp / "areas.csv"
    csv.write_text(
        "path,name_zh,name_en\n"
        "dali,大理州,Dali\n"
        "dali/dalishi,大理市,Dali city\n"
        "dali/dalishi/xizhou,喜洲镇,Xizhou\n"
        f"dali/dalishi/xizhou/{ids['site_a']},喜洲小院,Xizhou courtyard\n"
        "dali/dalishi/zhoucheng,周城村,Zhoucheng\n"
        f"dali/dalishi/zhoucheng/{ids['site_b']},周城小院,Zhoucheng courtyard\n",
        encoding="utf-8",
    )
    areas.import_areas_csv(conn, csv)
    store = AccountStore(conn, lambda: 1_700_000_000.0, FAST_HASHER)
    for name, (role, area) in USERS.items():
        store.add_user(name, PW, role, area)
    conn.close()
    return path


def console_app(service: IngestService, db_path: Path) -> FastAPI:
    """What the console shell's create_app will do, minus its own pages and lifespan."""
    app = FastAPI(title="Warmcard console (test)", version="1")
    app.state.service = service
    configure_auth(app, AuthConfig(db_path=db_path, cookie_secure=False, hasher=FAST_HASHER))
    app.include_router(auth_router)
    install_login_redirect(app)
    app.include_router(registry.router)
    app.include_router(reports.router)
    app.include_router(metrics.router)
    app.include_router(health.router)
    return app


def login(client: TestClient, username: str) -> str:
    """Log in through the form as a browser does; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login", data={"username": username, "password": PW, "csrf_token": token.group(1)}
    )
    assert r.status_code == 303, r.text
    csrf: str = client.get("/api/v1/me").json()["csrf_token"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


def client_as(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    login(client, username)
    return client


def close_unstarted(service: IngestService) -> None:
    """Release what an IngestService that was never started holds (stop() expects a start)."""
    service.storage.close()
    service.query_storage.close()
    service.registry.close()
    service.deadletters.close()
