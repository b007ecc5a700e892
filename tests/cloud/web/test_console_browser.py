# mypy: allow-untyped-defs
"""The console's alerts, visits, registry and reports in headless Chromium, against the real app
on real Mosquitto and InfluxDB with a real Kiosk: an offline kiosk raises an alarm and
clears it, a visit-due person is visited through the form and counted in the month's report,
CSV/XLSX downloads are checked, and an unknown card tapped in enrol mode is assigned."""

from __future__ import annotations

import csv
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page

from tests.faults.tcpproxy import TcpProxy
from tests.support.console import LiveConsole, browser_login, kiosk
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard.contract import Kind, MealPeriod
from warmcard.timestamps import now_us

DAY_US = 86_400_000_000
EVIL = "=cmd|' /C calc'!A0"
XIZHOU = "dali/dalishi/xizhou"


def this_month() -> str:
    return datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")


def row(page: Page, selector: str, timeout_s: float = 20.0) -> float:
    """Wait until `selector` is in the page (it reloads itself when alerts change); seconds."""
    started = time.monotonic()
    page.locator(selector).wait_for(timeout=timeout_s * 1000)
    return time.monotonic() - started


def gone(page: Page, selector: str, timeout_s: float = 20.0) -> float:
    started = time.monotonic()
    page.locator(selector).wait_for(state="detached", timeout=timeout_s * 1000)
    return time.monotonic() - started


def test_offline_kiosk_alarm_appears_and_clears_by_itself(
    browser: Browser, console: LiveConsole, mosquitto: Any, shots: Path
) -> None:
    gate = console.ids["gate_a"]
    proxy = TcpProxy(mosquitto.port)  # the kiosk's network: cut like a pulled cable
    with kiosk(console, gate, proxy.port):
        live = console.service.live
        wait_for(lambda: gate in live.device_seen() and live.device_seen()[gate].status)
        page = browser_login(browser, console.url, "mgr-a", path="/alerts")
        assert page.locator("#alerts-empty").is_visible()
        alarm = f'tr.alert[data-kind="device_offline"][data-subject="{gate}"]'

        proxy.cut()  # the broker sees the connection die and publishes the kiosk's last will
        appeared = row(page, alarm)
        text = page.inner_text(alarm)
        assert (
            "设备离线" in text and "断线" in text and "遗嘱" not in text and "喜洲幸福小院" in text
        )
        assert "设备 喜洲幸福小院入口终端 已断线" in text, text  # the kiosk by name
        page.locator("#nav-alert-count", has_text="1").wait_for(timeout=5000)
        page.screenshot(path=str(shots / "console-alerts.png"), full_page=True)

        overview = page.context.new_page()
        overview.goto(console.url + "/")
        overview.locator('[data-stat="alerts_device"]', has_text="1").wait_for(timeout=10_000)
        assert overview.inner_text('[data-stat="alerts_wellbeing"]') == "0"
        overview.close()

        proxy.restore()  # the kiosk reconnects by itself and its heartbeat clears the alarm
        cleared = gone(page, alarm)
        assert page.locator("#alerts-empty").is_visible()
        page.locator("#nav-alert-count").wait_for(state="hidden", timeout=5000)
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()
    proxy.close()
    print(f"offline alarm on /alerts after {appeared:.1f} s, cleared {cleared:.1f} s after return")
    assert appeared < 10 and cleared < 10


def test_visit_due_closed_in_the_browser_and_counted_in_downloaded_reports(
    browser: Browser, console: LiveConsole, shots: Path
) -> None:
    ids, service = console.ids, console.service
    site_a = ids["site_a"]
    # P0003 last tapped in three days ago; today two elders came and ate lunch.
    earlier = EventMaker(ids["gate_a"], base_us=now_us() - 3 * DAY_US)
    gate, canteen = EventMaker(ids["gate_a"], seq=100), EventMaker(ids["canteen_a"])
    events = [
        earlier.make(Kind.CHECK_IN, "P0003"),
        gate.make(Kind.CHECK_IN, "P0001"),
        gate.make(Kind.CHECK_IN, "P0002"),
        canteen.make(Kind.MEAL, "P0001", MealPeriod.LUNCH),
        canteen.make(Kind.MEAL, "P0002", MealPeriod.LUNCH),
    ]
    console.publisher.publish(events)
    wait_for(lambda: service.metrics.acked == len(events))
    # Flagged as living alone five days ago (what `warmcard flags import` does).
    service.alerts.store.set_flags([("P0003", "lives_alone", True)], now_us() - 5 * DAY_US)

    page = browser_login(browser, console.url, "view-a", path="/alerts/visits")
    due = 'article[data-person="P0003"]'
    row(page, due)
    text = page.inner_text(due)
    assert "长者3" in text and "独居" in text and "喜洲幸福小院" in text and "已 3 天未到院" in text
    page.screenshot(path=str(shots / "console-visits.png"), full_page=True)
    page.fill(f"{due} input[name=note]", "在家，身体好，已提醒按时吃饭")
    with page.expect_navigation():
        page.click(f"{due} button")
    assert page.url == console.url + "/alerts/visits"
    page.locator("#visits-empty").wait_for()

    # The month's report counts the visit; its downloads carry it, formulas neutralised.
    page.goto(console.url + "/reports")
    page.select_option("select[name=area]", XIZHOU)
    page.fill("input[name=month]", this_month())
    with page.expect_navigation():
        page.click("#report-form button")
    assert page.inner_text('[data-stat="visits"]') == "1"
    assert page.inner_text('[data-stat="meals"]') == "2"
    assert page.inner_text('[data-stat="elders"]') == "2"
    page.screenshot(path=str(shots / "console-reports.png"), full_page=True)
    # Renamed to what a spreadsheet would run as a formula; the downloads read the registry now.
    with service.registry.change() as db:
        db.execute(
            sa.text("UPDATE sites SET name_zh = :name WHERE site_id = :site"),
            {"name": EVIL, "site": site_a},
        )
    with page.expect_download() as csv_download:
        page.click("#export-csv")
    assert (
        csv_download.value.suggested_filename
        == f"warmcard-report-dali-dalishi-xizhou-{this_month()}.csv"
    )
    raw = Path(csv_download.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 with a BOM correctly
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert not any(cell.startswith("=") for r in rows for cell in r)
    today = datetime.now(ZoneInfo(TZ)).date().isoformat()
    [today_row] = [r for r in rows if r[0] == today]
    assert today_row[1:] == [site_a, "'" + EVIL, "2", "0", "2", "0", "2", "0"]  # none by hand
    summary = {r[0]: r[-1] for r in rows if r[0] and not r[0][0].isdigit()}
    assert summary["探访次数 Visits made"] == "1"
    with page.expect_download() as xlsx_download:
        page.click("#export-xlsx")
    xlsx = console.tmp / xlsx_download.value.suggested_filename
    xlsx_download.value.save_as(xlsx)
    assert xlsx.name.endswith(f"-{this_month()}.xlsx")
    book = load_workbook(xlsx)
    sheet = dict(book["汇总 Summary"].iter_rows(min_row=2, values_only=True))
    assert sheet["探访次数 Visits made"] == 1 and sheet["用餐合计 Meals served"] == 2
    names = {r[2] for r in book["每日 Daily"].iter_rows(min_row=2, values_only=True)}
    assert names == {"'" + EVIL}
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_people_page_adds_a_person_and_exports_csv(
    browser: Browser, console: LiveConsole, shots: Path
) -> None:
    page = browser_login(browser, console.url, "mgr-a", path="/registry/people")
    assert page.locator("#people tr[data-person]").count() == 6  # area A's six, none of B
    page.fill("#add-person input[name=display_name]", EVIL)
    with page.expect_navigation():
        page.click("#add-person button")
    assert page.inner_text("h1").startswith(EVIL)  # the person's own page, text not markup
    page.click('.subnav a[href="/registry/people"]')
    page.locator("#people tr[data-person]").nth(6).wait_for()
    page.screenshot(path=str(shots / "console-registry-people.png"), full_page=True)
    with page.expect_download() as download:
        page.click('a.button[href^="/api/v1/registry/people.csv"]')
    rows = list(csv.reader(Path(download.value.path()).read_text("utf-8-sig").splitlines()))
    assert len(rows) == 1 + 7 and "'" + EVIL in [r[1] for r in rows]
    assert not any(cell.startswith("=") for r in rows for cell in r)
    assert not any(r[0] in {f"P{i:04d}" for i in range(7, 11)} for r in rows)  # area B's
    # English on request: the nav, the sub-nav and the table speak English, remembered.
    page.goto(console.url + "/registry/people?lang=en")
    assert page.inner_text('header nav a[aria-current="page"]') == "Registry"
    assert "Display name" in page.inner_text("#people thead")
    page.goto(console.url + "/registry/cards")
    assert page.inner_text(".subnav a.active") == "Cards"
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_card_tapped_in_enrol_mode_is_assigned_from_the_browser(
    browser: Browser, console: LiveConsole, mosquitto: Any
) -> None:
    gate = console.ids["gate_a"]
    uid = "04C0FFEE5A1B2C"
    with kiosk(console, gate, mosquitto.port) as (gateway, reader):
        page = browser_login(browser, console.url, "mgr-a", path="/registry/devices")
        with page.expect_navigation():
            page.click(f'#devices tr[data-device="{gate}"] a')
        with page.expect_navigation():
            page.click("#enrol-start button")
        page.locator("#enrol-state", has_text="录入中").wait_for()

        reader.tap(uid)  # an unregistered card on the real kiosk: it reports unknown_card
        capture = page.locator('#captures [data-known="false"]', has_text=uid)
        capture.wait_for(timeout=15_000)
        capture.locator("input.pick").fill("P0002")
        capture.locator('button.pick-person[data-person="P0002"]').click()
        page.locator('#captures [data-assigned="P0002"]', has_text=uid).wait_for()
        assert "已登记给 长者2" in capture.inner_text()
        page.goto(console.url + "/registry/people/P0002")
        assert uid in page.inner_text("#cards")

        # Ingest republishes the site's roster: the kiosk now knows the card offline too.
        def knows_card() -> bool:
            roster = gateway.roster
            return roster is not None and any(e.card_uid == uid for e in roster.entries)

        wait_for(knows_card)
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()
