# mypy: allow-untyped-defs
"""A courtyard head (院长) in headless Chromium, against the real app on real Mosquitto and
InfluxDB with a real Kiosk: an account granted one site lands on that site, live."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from cloud_ingest.console import db as console_db
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Role
from tests.support.console import (
    FAST_HASHER,
    LiveConsole,
    add_user,
    browser_login,
    kiosk,
    live_console,
    logged_in,
)

XIZHOU = "dali/dalishi/xizhou"
ZHOUCHENG = "dali/dalishi/zhoucheng"


@pytest.fixture
def console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[LiveConsole]:
    with live_console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) as running:
        yield running


def test_a_head_granted_one_site_lands_on_it_live(
    browser: Browser, console: LiveConsole, mosquitto: Any, shots: Path
) -> None:
    site_a, site_b = console.ids["site_a"], console.ids["site_b"]
    db = console.service.settings.console_db
    add_user(db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    with kiosk(console, console.ids["gate_a"], mosquitto.port) as (_, reader):
        page = browser_login(browser, console.url, "head-a")
        page.locator("#conn[data-state=live]").wait_for(timeout=10_000)
        row = page.locator(f'#sites tr[data-site="{site_a}"]')
        row.wait_for(timeout=10_000)
        assert page.locator("#sites tr[data-site]").count() == 1  # only their courtyard
        assert "喜洲幸福小院" in page.inner_text("#trail")
        assert row.get_attribute("data-present") == "0"

        reader.tap("04A1B201")  # P0001 arrives at the gate: shown without reloading
        page.locator(f'#sites tr[data-site="{site_a}"][data-present="1"]').wait_for(timeout=10_000)
        page.locator('[data-stat="present"]', has_text="1 / 40").first.wait_for()
        page.screenshot(path=str(shots / "console-head-overview.png"), full_page=True)
        assert page.locator("#conn").get_attribute("data-state") == "live"
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()

    # The API and its stream answer for the site's own path; a neighbour's path stays 404.
    with closing(logged_in(console.url, "head-a")) as client:
        doc = client.get("/api/v1/overview").json()
        assert doc["total"] == 1 and doc["scope"] == f"{XIZHOU}/{site_a}"
        assert doc["rollup"]["scope"]["name_zh"] == "喜洲幸福小院"
        assert doc["rollup"]["scope"]["level"] == "site"
        with client.stream("GET", f"/api/v1/overview/stream?area={XIZHOU}/{site_a}") as s:
            assert s.status_code == 200
        r = client.get(f"/api/v1/overview?area={ZHOUCHENG}/{site_b}")
        assert r.status_code == 404


def test_a_head_of_two_sites_sees_both_and_no_other(console: LiveConsole) -> None:
    site_a, site_b = console.ids["site_a"], console.ids["site_b"]
    db = console.service.settings.console_db
    add_user(db, "head-ab", Role.VIEWER, f"{XIZHOU}/{site_a}")
    with closing(logged_in(console.url, "root-admin")) as admin:
        assert admin.get("/api/v1/overview").json()["total"] == 2
    conn = console_db.connect(db)
    AccountStore(conn, lambda: 1_700_000_000.0, FAST_HASHER).grant(
        "head-ab", Role.VIEWER, f"{ZHOUCHENG}/{site_b}"
    )
    conn.close()
    with closing(logged_in(console.url, "head-ab")) as client:
        doc = client.get("/api/v1/overview").json()
        assert doc["total"] == 2
        children = {c["path"]: c for c in doc["rollup"]["children"]}
        assert children[f"{XIZHOU}/{site_a}"]["name_zh"] == "喜洲幸福小院"
        assert children[f"{ZHOUCHENG}/{site_b}"]["level"] == "site"
        assert doc["rollup"]["scope"]["sites"] == 2
        assert client.get(f"/api/v1/overview?area={XIZHOU}").status_code == 404
