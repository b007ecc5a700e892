# mypy: allow-untyped-defs
"""Names, not ids or area paths, on the zh-CN console pages, in headless Chromium against the
real app on real Mosquitto and InfluxDB: as a prefecture admin and as a township viewer."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from playwright.sync_api import Browser, Page
from playwright.sync_api import Error as PlaywrightError

from cloud_ingest.console.roles import Role
from tests.support.console import LiveConsole, add_user, browser_login
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard.contract import DeviceStatus, Kind, MealPeriod, ReaderState, status_topic

# The areas of tests.support.console.console_db_for and the sites of write_registry.
XIZHOU, CITY = "dali/dalishi/xizhou", "dali/dalishi"


def texts(page: Page, selector: str) -> list[str]:
    """The texts of `selector`; read again if the page reloads meanwhile (the alerts pages
    reload themselves when the alert counts change, as they may just after an alert opens)."""
    for _ in range(5):
        try:
            return [s.strip() for s in page.locator(selector).all_inner_texts()]
        except PlaywrightError as exc:
            if "context was destroyed" not in str(exc):
                raise
            page.wait_for_load_state()
    return [s.strip() for s in page.locator(selector).all_inner_texts()]


def seed_alert(c: LiveConsole) -> None:
    """A repeat meal at site A: an open alert, so the alerts page lists the site."""
    canteen = EventMaker(c.ids["canteen_a"], seq=300)
    events = [canteen.make(k, "P0001", MealPeriod.LUNCH) for k in (Kind.MEAL, Kind.MEAL_REPEAT)]
    c.publisher.publish(events)
    wait_for(lambda: len(c.service.alerts.store.find([""])) >= 1)


def test_admin_sees_names_where_ids_and_paths_were(browser: Browser, console: LiveConsole):
    site_a, gate_a = console.ids["site_a"], console.ids["gate_a"]
    seed_alert(console)
    status = DeviceStatus(device_id=gate_a, state="online", outbox_depth=0, reader=ReaderState.OK)
    console.publisher.publish_raw(status_topic(gate_a), status.to_bytes(), retain=True)
    month = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    page = browser_login(browser, console.url, "root-admin", path="/alerts")

    options = texts(page, "select[name=site] option")
    assert "喜洲幸福小院" in options and site_a not in options

    page.goto(console.url + "/alerts/closures")
    choices = texts(page, "#add-closure select[name=area] option")
    assert {"全部", "大理市", "喜洲镇", "喜洲小院"} <= set(choices)
    assert not [c for c in choices if "/" in c or site_a in c]
    page.select_option("#add-closure select[name=area]", XIZHOU)
    page.fill("#add-closure input[name=start_day]", f"{month}-01")
    page.click("#add-closure button")
    page.wait_for_selector("#closures")
    cell = page.locator(f'tr.closure[data-area="{XIZHOU}"] td').first
    assert cell.inner_text().strip() == "喜洲镇"

    page.goto(console.url + "/audit")
    actions = texts(page, "select[name=action] option")
    assert {"查看", "搜索", "导出"} <= set(actions) and "view" not in actions
    assert "人员" in texts(page, "select[name=kind] option")
    done = set(texts(page, "#audit tbody td:nth-child(4)"))  # the rows' actions
    assert "搜索" in done and not done & {"view", "search", "create", "export"}

    page.goto(console.url + "/admin/users")
    grants = page.locator("tr", has_text="view-a").inner_text()
    assert "喜洲镇" in grants and XIZHOU not in grants

    page.goto(console.url + "/registry/people/P0001")
    heading = page.locator("h1").inner_text()
    assert "喜洲幸福小院" in heading and site_a not in heading and "P0001" in heading
    assert texts(page, "select[name=order] option") == ["小端（常见）", "大端"]

    page.goto(console.url + f"/registry/devices/{gate_a}/enrol")
    heading = page.locator("h1").inner_text()
    assert "喜洲幸福小院" in heading and f"· {site_a}" not in heading

    page.goto(console.url + f"/sites/{site_a}")
    row = page.locator("#kiosks tr", has_text=gate_a)
    wait_for(lambda: "正常" in row.inner_text())
    assert "ok" not in row.inner_text().split()

    page.goto(console.url + "/reports")
    assert page.input_value("input[name=month]") == month

    page.goto(console.url + f"/reports/meals?area={CITY}&month={month}")
    assert "区域: 大理市" in page.locator("main").inner_text()
    assert texts(page, "#meal-rows thead th")[:2] == ["乡镇", "站点"]
    assert texts(page, "#meal-totals thead th")[0] == "乡镇"
    assert texts(page, "#meal-totals tbody tr")[-1].split()[0] == "合计"  # not "合计 Total"
    xlsx = page.request.get(console.url + f"/api/v1/reports/monthly.xlsx?area={CITY}&month={month}")
    book = load_workbook(io.BytesIO(xlsx.body()))
    summary = dict(book["汇总 Summary"].iter_rows(min_row=2, values_only=True))
    assert summary["区域 Area"] == "大理市 Dali city"
    assert page.errors == []  # type: ignore[attr-defined]
    console.publisher.publish_raw(status_topic(gate_a), b"", retain=True)


def test_township_viewer_sees_names(browser: Browser, console: LiveConsole):
    site_a = console.ids["site_a"]
    seed_alert(console)
    page = browser_login(browser, console.url, "view-a", path="/alerts")
    options = texts(page, "select[name=site] option")
    assert "喜洲幸福小院" in options and site_a not in options
    page.goto(console.url + "/registry/people/P0001")
    heading = page.locator("h1").inner_text()
    assert "喜洲幸福小院" in heading and site_a not in heading
    page.goto(console.url + "/reports")
    assert page.input_value("input[name=month]") == datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    assert page.errors == []  # type: ignore[attr-defined]


def test_report_outside_the_grants_is_the_console_not_found_page(
    browser: Browser, console: LiveConsole
):
    """A courtyard head opening another township's report: the 404 page, not raw JSON."""
    site_a = console.ids["site_a"]
    add_user(console.service.settings.console_db, "head-a", Role.MANAGER, f"{XIZHOU}/{site_a}")
    month = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    page = browser_login(browser, console.url, "head-a")
    for path in (
        f"/reports?area=dali/dalishi/zhoucheng&month={month}",
        f"/reports/meals?area=dali/dalishi/zhoucheng&month={month}",
    ):
        answer = page.goto(console.url + path)
        assert answer is not None and answer.status == 404
        assert "text/html" in answer.headers["content-type"]
        assert page.locator("p.error").inner_text() == "未找到 Not found"
        assert page.locator("nav").count() >= 1  # the console's frame, with its nav
        assert "detail" not in page.locator("body").inner_text()
