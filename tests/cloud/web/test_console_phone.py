# mypy: allow-untyped-defs
"""The console on a 390 × 844 phone in headless Chromium, against the real app on real Mosquitto
and InfluxDB: every page fits the screen without horizontal scrolling, and a watcher (守望员)
walks their task end to end (the visits due, one card per person, a visit recorded)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, ViewportSize

from cloud_ingest.console.roles import Role
from tests.support.console import PASSWORD, LiveConsole, add_user, browser_page
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard.contract import Kind, MealPeriod
from warmcard.timestamps import now_us

DAY_US = 86_400_000_000
PHONE: ViewportSize = {"width": 390, "height": 844}


def phone_login(browser: Browser, url: str, username: str, path: str = "/") -> Page:
    """Log in on a 390 × 844 touch screen (a phone), landing on `path`."""
    page = browser_page(browser, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.set_viewport_size(PHONE)
    page.goto(url + path)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + path)
    return page


def seed(c: LiveConsole) -> None:
    """Taps today and three days ago, a repeat meal (a fraud alert naming a person), two elders
    living alone unseen for days (visits due)."""
    service = c.service
    three_days_ago = EventMaker(c.ids["gate_a"], base_us=now_us() - 3 * DAY_US)
    today = {k: EventMaker(c.ids[k], seq=100) for k in ("gate_a", "canteen_a")}
    events = [three_days_ago.make(Kind.CHECK_IN, p) for p in ("P0003", "P0004")]
    events.append(today["gate_a"].make(Kind.CHECK_IN, "P0001"))
    events += [
        today["canteen_a"].make(kind, "P0001", MealPeriod.BREAKFAST)
        for kind in (Kind.MEAL, Kind.MEAL_REPEAT)
    ]
    c.publisher.publish(events)
    wait_for(lambda: service.metrics.acked == len(events))
    flagged = [(p, "lives_alone", True) for p in ("P0003", "P0004")]
    service.alerts.store.set_flags(flagged, now_us() - 5 * DAY_US)
    wait_for(lambda: len(service.alerts.store.find([""])) >= 3)


def width(page: Page, url: str) -> tuple[int, int]:
    """(scrollWidth, innerWidth) of `url` once loaded and settled."""
    page.goto(url)
    page.wait_for_load_state("networkidle")
    got = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return int(got[0]), int(got[1])


def test_every_page_fits_a_390_px_phone(browser: Browser, console: LiveConsole, shots: Path):
    seed(console)
    site, gate = console.ids["site_a"], console.ids["gate_a"]
    this_month = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    pages = {
        "view-a": [
            "/",
            f"/sites/{site}",
            "/alerts",
            "/alerts/visits",
            "/registry/people",
            "/registry/people/P0003",
            "/registry/cards",
            "/registry/devices",
            "/reports?area=dali/dalishi/xizhou",
        ],
        "mgr-a": [
            f"/registry/devices/{gate}/enrol",
            "/alerts?state=closed",
            "/registry/people/import",
            f"/reports/meals?area=dali/dalishi/xizhou&month={this_month}",
        ],
        # A courtyard head: one grant, on their courtyard alone.
        "head-a": ["/", f"/sites/{site}", "/registry/people"],
        "root-admin": ["/audit", "/admin/users", "/admin/users/mgr-a"],
    }
    add_user(
        console.service.settings.console_db, "head-a", Role.MANAGER, f"dali/dalishi/xizhou/{site}"
    )
    widths: dict[str, tuple[int, int]] = {}
    for user, paths in pages.items():
        page = phone_login(browser, console.url, user, paths[0])
        for path in paths:
            widths[path] = width(page, console.url + path)
            if user == "view-a" and path in ("/", "/alerts"):
                name = path.strip("/") or "overview"
                page.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()
    for path, (scroll, inner) in widths.items():
        print(f"390 px: {path} scrollWidth {scroll} (innerWidth {inner})")
    # A phone browser widens its layout viewport (innerWidth) to fit a page wider than the
    # screen, so the screen's own 390 px is the measure, and innerWidth must stay at it.
    too_wide = {p: w for p, w in widths.items() if max(w) > PHONE["width"]}
    assert too_wide == {}


def right_edge(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return float(box["x"] + box["width"])


def test_watcher_walks_the_visits_due_on_a_phone(browser: Browser, console: LiveConsole, shots):
    seed(console)
    page = phone_login(browser, console.url, "view-a", "/alerts/visits")
    card = 'article[data-person="P0003"]'
    page.locator(card).wait_for()
    assert page.locator("article[data-person]").count() == 2  # P0003 and P0004, one card each
    text = page.inner_text(card)
    assert "长者3" in text and "已 3 天未到院" in text and "独居" in text
    # The note and the button are on the screen, full width of the card.
    assert right_edge(page, f"{card} input[name=note]") <= PHONE["width"]
    assert right_edge(page, f"{card} button") <= PHONE["width"]
    assert page.locator(f"{card} button").bounding_box()["width"] > 300  # type: ignore[index]
    page.screenshot(path=str(shots / "phone-watcher-visits.png"), full_page=True)
    page.locator(f"{card} input[name=note]").tap()
    page.fill(f"{card} input[name=note]", "在家，身体好")
    with page.expect_navigation():
        page.locator(f"{card} button").tap()
    page.locator(card).wait_for(state="detached")
    assert page.locator("article[data-person]").count() == 1
    # The alerts speak of the elder by name, in Chinese throughout.
    page.goto(console.url + "/alerts")
    repeat = 'tr.alert[data-kind="meal_repeat"]'
    page.locator(repeat).wait_for()
    text = page.inner_text(repeat)
    assert "长者1" in text and "P0001" not in text and "早餐" in text and "breakfast" not in text
    assert page.locator("#bulk-ack").count() == 0  # a viewer acknowledges nothing
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_manager_acknowledges_several_alerts_at_once(browser: Browser, console: LiveConsole):
    seed(console)
    page = phone_login(browser, console.url, "mgr-a", "/alerts")
    rows = page.locator('tr.alert.open input[type=checkbox][form="bulk-ack"]')
    rows.first.wait_for()
    ticked = rows.count()
    assert ticked >= 2
    shown = [int(rows.nth(i).get_attribute("value") or 0) for i in range(ticked)]
    for i in range(ticked):
        rows.nth(i).check()
    with page.expect_navigation():
        page.click("#bulk-ack button")
    assert page.locator("tr.alert.open").count() == 0
    assert page.locator("tr.alert.acknowledged").count() == ticked
    # Every alert ticked is acknowledged (the engine may raise new ones meanwhile: not these).
    store = console.service.alerts.store
    states = {store.get(i).state.value for i in shown}
    assert states == {"acknowledged"}
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()
