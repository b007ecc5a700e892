# mypy: allow-untyped-defs
"""Care on a 390 × 844 phone in headless Chromium, against the real app on real Mosquitto and
InfluxDB: a township watcher calls an elder living alone (tap-to-call) and records the visit; a
role without the contacts right sees no phone or address; a township manager adds a Spring
Festival closure and the elders' visit-due cards go."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Role
from cloud_ingest.registry.contacts import set_contact
from tests.cloud.web.test_console_phone import PHONE, phone_login, seed, width
from tests.support.console import FAST_HASHER, PASSWORD, LiveConsole
from tests.support.ingest import TZ
from warmcard.timestamps import now_us

TEL, ADDRESS = "138-0000-0003", "喜洲镇城北村北巷 3 号"
CARD = 'article[data-person="P0003"]'


def with_contact(console: LiveConsole) -> None:
    seed(console)  # P0003 and P0004 live alone, last seen three days ago: due a visit
    set_contact(console.service.registry, "P0003", TEL, ADDRESS, "mgr-a", now_us())


def test_watcher_calls_and_records_a_visit_on_a_phone(
    browser: Browser, console: LiveConsole, shots: Path
):
    with_contact(console)
    page = phone_login(browser, console.url, "view-a", "/alerts/visits")
    page.locator(CARD).wait_for()
    text = page.inner_text(CARD)
    assert "长者3" in text and "已 3 天未到院" in text and ADDRESS in text
    call = page.locator(f'{CARD} a[href^="tel:"]')
    assert call.get_attribute("href") == "tel:13800000003" and TEL in call.inner_text()
    box = call.bounding_box()
    assert box is not None and box["height"] >= 24  # a thumb can hit it
    assert page.locator('article[data-person="P0004"] a[href^="tel:"]').count() == 0  # none kept
    scroll, inner = width(page, console.url + "/alerts/visits")
    print(f"390 px visits with contacts: scrollWidth {scroll} innerWidth {inner}")
    assert scroll <= inner == PHONE["width"]
    page.screenshot(path=str(shots / "phone-watcher-call.png"), full_page=True)
    page.fill(f"{CARD} input[name=note]", "电话联系后上门，身体好")
    with page.expect_navigation():
        page.locator(f"{CARD} button").tap()
    page.locator(CARD).wait_for(state="detached")
    [visit] = console.service.alerts.store.visits_between("", 0, now_us() + 1)
    assert (visit.person_id, visit.note, visit.recorded_by) == (
        "P0003",
        "电话联系后上门，身体好",
        "view-a",
    )
    # The person page shows the contact to the watcher too, and no edit form.
    page.goto(console.url + "/registry/people/P0003")
    assert page.locator('#contact a[href^="tel:"]').count() == 1
    assert page.locator("#contact-form").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_a_role_without_the_contacts_right_sees_no_phone(browser: Browser, console: LiveConsole):
    with_contact(console)
    # County finance and canteen staff of the township see the visits, not phones and addresses.
    store = AccountStore(console.service.settings.store("console"), time.time, FAST_HASHER)
    try:
        store.add_user("fin-a", PASSWORD, Role.FINANCE, "dali/dalishi/xizhou")
        store.add_user("staff-a", PASSWORD, Role.STAFF, "dali/dalishi/xizhou")
    finally:
        store.close()
    for user, sees in (("fin-a", False), ("staff-a", False), ("view-a", True), ("mgr-a", True)):
        page = phone_login(browser, console.url, user, "/alerts/visits")
        page.locator(CARD).wait_for()
        assert (page.locator('a[href^="tel:"]').count() == 1) is sees, user
        assert (ADDRESS in page.content()) is sees, user
        page.goto(console.url + "/registry/people/P0003")
        assert (TEL in page.content()) is sees and (ADDRESS in page.content()) is sees, user
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()


def test_township_manager_closes_for_spring_festival(
    browser: Browser, console: LiveConsole, shots: Path
):
    with_contact(console)
    page = phone_login(browser, console.url, "mgr-a", "/alerts/visits")
    page.locator(CARD).wait_for()
    assert page.locator("article[data-person]").count() == 2
    # Closed the three local days before today: the time unseen is now under a day.
    today = datetime.now(ZoneInfo(TZ)).date()
    page.goto(console.url + "/alerts/closures")
    options = page.locator("#add-closure select[name=area] option")
    values = [o.get_attribute("value") or "" for o in options.all()]
    assert "dali/dalishi/xizhou" in values and not any("zhoucheng" in v for v in values)
    assert options.all_inner_texts() == ["喜洲镇", "喜洲小院"]  # names, not paths
    page.select_option("#add-closure select[name=area]", "dali/dalishi/xizhou")
    page.fill("#add-closure input[name=start_day]", (today - timedelta(days=3)).isoformat())
    page.fill("#add-closure input[name=end_day]", (today - timedelta(days=1)).isoformat())
    page.fill("#add-closure input[name=reason]", "春节 Spring Festival")
    with page.expect_navigation():
        page.locator("#add-closure button").tap()
    row = page.locator('tr.closure[data-area="dali/dalishi/xizhou"]')
    assert "春节" in row.inner_text()
    scroll, inner = width(page, console.url + "/alerts/closures")
    print(f"390 px closures: scrollWidth {scroll} innerWidth {inner}")
    assert scroll <= inner == PHONE["width"]
    page.screenshot(path=str(shots / "phone-closures.png"), full_page=True)
    page.goto(console.url + "/alerts/visits")
    page.locator("#visits-empty").wait_for()
    assert page.locator("article[data-person]").count() == 0
    # Deleted again, the elders are due once more (the next evaluation, within a second).
    page.goto(console.url + "/alerts/closures")
    with page.expect_navigation():
        page.locator("tr.closure button.remove").tap()
    page.goto(console.url + "/alerts/visits")
    page.locator(CARD).wait_for()
    assert "已 3 天未到院" in page.inner_text(CARD)
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_manager_sets_flag_and_contact_on_the_person_page(
    browser: Browser, console: LiveConsole, shots: Path
):
    page = phone_login(browser, console.url, "mgr-a", "/registry/people/P0005")
    flag = '#flags li[data-flag="lives_alone"]'
    assert page.get_attribute(flag, "data-set") == "0"
    with page.expect_navigation():
        page.locator(f"{flag} button").tap()
    assert page.get_attribute(flag, "data-set") == "1" and "标记于" in page.inner_text(flag)
    flagged = {p: t for p, f, t in console.service.alerts.store.flags() if f == "lives_alone"}
    assert abs(flagged["P0005"] - now_us()) < 60_000_000  # flagged when set: the full grace
    page.fill("#contact-form input[name=phone]", "0872 267 1234")
    page.fill("#contact-form input[name=address]", "喜洲镇城北村南巷 5 号")
    with page.expect_navigation():
        page.locator("#contact-form button").tap()
    assert page.get_attribute('#contact a[href^="tel:"]', "href") == "tel:08722671234"
    page.fill("#contact-form input[name=phone]", "call me")  # refused, nothing lost
    with page.expect_navigation():
        page.locator("#contact-form button").tap()
    assert "电话无效" in page.content()
    page.goto(console.url + "/registry/people/P0005")
    assert "0872 267 1234" in page.inner_text("#contact")
    scroll, inner = width(page, console.url + "/registry/people/P0005")
    print(f"390 px person page with care: scrollWidth {scroll} innerWidth {inner}")
    assert scroll <= inner == PHONE["width"]
    page.screenshot(path=str(shots / "phone-person-care.png"), full_page=True)
    page.context.close()
