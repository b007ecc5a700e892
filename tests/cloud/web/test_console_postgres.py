# mypy: allow-untyped-defs
"""The whole console on a real uvicorn, Mosquitto and InfluxDB with its store (users, sessions,
login failures, areas, audit log) on PostgreSQL (`[database] url`), as several machines run it:
scope by area, login limits, the audit trail, and a disabled user's session ending at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from sqlalchemy import text

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.audit import AuditFilter, AuditLog
from tests.support.console import FAST_HASHER, LiveConsole, live_console, logged_in, login_csrf


@pytest.fixture
def console(tmp_path, mosquitto, influxd, influx_db, topic_prefix, pg_url) -> Iterator[LiveConsole]:
    with live_console(
        tmp_path, mosquitto, influxd, influx_db, topic_prefix, store_url=pg_url
    ) as running:
        yield running


def test_the_console_serves_from_a_postgresql_store(console: LiveConsole, pg_url: str) -> None:
    assert console.service.settings.store("console") == pg_url
    store = AccountStore(pg_url, lambda: 1_700_000_000.0, FAST_HASHER)
    with store.db.read() as conn:  # the users are in PostgreSQL
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 4
    with closing(logged_in(console.url, "root-admin")) as root:
        assert root.get("/api/v1/overview").json()["total"] == 2
    with closing(logged_in(console.url, "view-a")) as viewer:
        doc = viewer.get("/api/v1/overview").json()
        assert doc["total"] == 1 and doc["sites"][0]["site_id"] == console.ids["site_a"]
        assert viewer.get("/api/v1/registry/people/P0001").status_code == 200
        # The view is in the audit log, in PostgreSQL, and the chain verifies.
        audit = AuditLog(pg_url)
        try:
            rows, _ = audit.find(AuditFilter(username="view-a", object_id="P0001"))
            assert [(r.action, r.status) for r in rows] == [("view", 200)]
            assert audit.verify().ok
        finally:
            audit.close()
        # Disabled from another process (a command on another machine): the session ends now.
        store.set_disabled("view-a", True)
        store.close()
        assert viewer.get("/api/v1/overview").status_code == 401
    # Five wrong passwords, then 429 even for the right one.
    with httpx.Client(base_url=console.url, timeout=15) as client:
        csrf = login_csrf(client)
        codes = [
            client.post(
                "/login",
                json={"username": "mgr-a", "password": password},
                headers={"X-CSRF-Token": csrf},
            ).status_code
            for password in ["wrong-password"] * 5 + ["erhai-sunrise-2718"]
        ]
    assert codes == [401] * 5 + [429]
