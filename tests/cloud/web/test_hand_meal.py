# mypy: allow-untyped-defs
"""补录 in headless Chromium as canteen staff of one site, on the real app over real Mosquitto and
InfluxDB: the elder found by name, the meal counted and marked manual in the meal sheet (JSON
and the print page), the same point shape as a kiosk's staff-card meal, a second one refused,
one the kiosk already recorded refused, staff of another site refused, every attempt audited."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from cloud_ingest.console import hand_meals
from cloud_ingest.console.roles import Role
from cloud_ingest.ops import reconcile
from cloud_ingest.pipeline.lineprotocol import HAND_DEVICE
from tests.faults.kiosks import OffsetClock
from tests.support.console import (
    LiveConsole,
    add_user,
    browser_login,
    console_rows,
    kiosk,
    logged_in,
)
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard import localtime
from warmcard.contract import Kind, MealPeriod
from warmcard.timestamps import now_us

XIZHOU = "dali/dalishi/xizhou"
ZHOUCHENG = "dali/dalishi/zhoucheng"


def _points(c: LiveConsole, where: str) -> list[dict[str, Any]]:
    series = c.app.state.service.query_storage.query(f"SELECT * FROM taps WHERE {where}")
    return [dict(zip(s.columns, row, strict=True)) for s in series for row in s.values]


def _audit(c: LiveConsole) -> list[tuple[Any, ...]]:
    return console_rows(
        c.service.settings.store("console"),
        "SELECT username, action, object_id, detail, status FROM audit_log "
        "WHERE object_kind = 'meal' ORDER BY seq",
    )


def test_staff_record_a_meal_by_hand(browser: Browser, console: LiveConsole, shots: Path) -> None:
    c = console
    site_a, site_b = c.ids["site_a"], c.ids["site_b"]
    db = c.service.settings.store("console")
    add_user(db, "li.canteen", Role.STAFF, f"{XIZHOU}/{site_a}")
    site = c.app.state.service.registry.site(site_a)
    today = localtime.to_local(now_us(), TZ).date()
    yesterday = today - timedelta(days=1)

    # From the site's page to the 补录 page; the defaults are today and the current period.
    page = browser_login(browser, c.url, "li.canteen", path=f"/sites/{site_a}")
    page.click("#hand-meal-link")
    page.wait_for_url(f"{c.url}/sites/{site_a}/meals/manual")
    assert page.input_value("#hand-meal-day") == today.isoformat()
    assert page.input_value("#hand-meal-period") == hand_meals.current_period(site, now_us()).value
    assert page.get_attribute("#hand-meal-day", "max") == today.isoformat()
    assert page.get_attribute("#hand-meal-day", "min") == (today - timedelta(days=7)).isoformat()

    # Find 长者3 by name, take yesterday's lunch (always begun, whatever the hour of the run).
    page.fill("#hand-meal-search", "长者3")
    page.click('#hand-meal-results button[data-person="P0003"]')
    assert "P0003" in page.inner_text("#hand-meal-chosen")
    page.select_option("#hand-meal-period", "lunch")
    page.fill("#hand-meal-day", yesterday.isoformat())
    page.fill("#hand-meal-reason", "忘带卡")
    page.click("#hand-meal-submit")
    page.locator("#hand-meal-done").wait_for(timeout=10_000)
    assert "P0003" in page.inner_text("#hand-meal-done")
    row = page.locator("#hand-meals tbody tr").first
    assert "忘带卡" in row.inner_text() and "li.canteen" in row.inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(shots / "console-staff-hand-meal.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})

    # The point: a kiosk manual meal's shape, on the console's own device, witness the account.
    (point,) = _points(c, f"\"device\" = '{HAND_DEVICE}'")
    assert point["kind"] == "meal" and point["meal_period"] == "lunch"
    assert point["site"] == site_a and point["person_id"] == "P0003"
    assert point["manual"] is True and point["witness"] == "user:li.canteen"
    assert point.get("card_uid") is None
    start = localtime.to_us(datetime.combine(yesterday, time(11, 0), tzinfo=localtime.zone(TZ)))
    assert point["time"] == start + point["seq"]  # lunch's start plus the seq: unique

    # Counted and marked manual in the meal sheet (JSON and the print page).
    month, area = yesterday.strftime("%Y-%m"), f"{XIZHOU}/{site_a}"
    staff = logged_in(c.url, "li.canteen")
    doc = staff.get("/api/v1/reports/meals", params={"area": area, "month": month}).json()
    (mine,) = [r for r in doc["rows"] if r["person_id"] == "P0003"]
    assert mine["date"] == yesterday.isoformat()
    assert mine["meals"]["lunch"] == 1 and mine["manual"]["lunch"] == 1
    assert doc["total"]["manual"] >= 1
    page.goto(f"{c.url}/reports/meals?area={area}&month={month}")
    sheet = page.locator("#meal-rows tr", has_text="P0003").inner_text()
    assert "1*" in sheet and "午餐" in sheet

    # The same meal again: refused, nothing more stored.
    page.goto(f"{c.url}/sites/{site_a}/meals/manual")
    page.fill("#hand-meal-search", "zz")  # pinyin initials of 长者
    page.click('#hand-meal-results button[data-person="P0003"]')
    page.select_option("#hand-meal-period", "lunch")
    page.fill("#hand-meal-day", yesterday.isoformat())
    page.fill("#hand-meal-reason", "忘带卡")
    page.click("#hand-meal-submit")
    page.locator("#hand-meal-error").wait_for(timeout=10_000)
    assert "不能重复" in page.inner_text("#hand-meal-error")
    assert [e for e in page.errors if "/meals/manual" in e and e.startswith("409")]  # type: ignore[attr-defined]
    assert len(_points(c, f"\"device\" = '{HAND_DEVICE}'")) == 1
    # The page in English, the people search working there too.
    page.goto(f"{c.url}/sites/{site_a}/meals/manual?lang=en")
    assert page.inner_text("h1").startswith("Record a meal by hand")
    assert "Recorded by hand in the last 7 days" in page.inner_text("main")
    page.fill("#hand-meal-search", "p0004")
    assert page.locator("#hand-meal-results button").all_inner_texts() == ["长者4 · P0004"]
    page.goto(f"{c.url}/sites/{site_a}/meals/manual?lang=zh-CN")

    # A meal the kiosk recorded (P0004's lunch yesterday, through the real pipeline): refused.
    noon = localtime.to_us(datetime.combine(yesterday, time(11, 30), tzinfo=localtime.zone(TZ)))
    kiosk_meal = EventMaker(c.ids["canteen_a"], base_us=noon).make(
        Kind.MEAL, "P0004", MealPeriod.LUNCH
    )
    c.publisher.publish([kiosk_meal])
    wait_for(lambda: _points(c, "\"person_id\" = 'P0004'"))
    body = {"person_id": "P0004", "meal_period": "lunch", "day": yesterday.isoformat()}
    csrf = {"X-CSRF-Token": staff.get("/api/v1/me").json()["csrf_token"]}
    url = f"/api/v1/sites/{site_a}/meals/manual"
    r = staff.post(url, json={**body, "reason": "忘带卡"}, headers=csrf)
    assert r.status_code == 409 and "已有记录" in r.json()["detail"]
    # Bad input: no reason, tomorrow, too long ago.
    assert staff.post(url, json={**body, "reason": " "}, headers=csrf).status_code == 400
    late = {**body, "reason": "x", "day": (today + timedelta(days=1)).isoformat()}
    assert staff.post(url, json=late, headers=csrf).status_code == 400
    old = {**body, "reason": "x", "day": (today - timedelta(days=8)).isoformat()}
    assert staff.post(url, json=old, headers=csrf).status_code == 400
    # The JSON path records like the form. Seqs a refused write used are never reused, so the
    # console's seq line has gaps (here 2-6) that nothing must take for lost kiosk taps: five
    # rows written and removed again, as refused writes leave them.
    gap = "INSERT INTO hand_meals (event_id, person_id, site_id, day, period, ts_us, reason,"
    gap += " recorded_by, recorded_us) VALUES (:e, :e, 'x', 'x', 'x', 0, '', 'x', 0)"
    console_rows(db, gap, [{"e": f"refused-{i}"} for i in range(5)], write=True)
    console_rows(db, "DELETE FROM hand_meals WHERE site_id = 'x'", write=True)
    ok = staff.post(url, json={**body, "person_id": "P0005", "reason": "卡片损坏"}, headers=csrf)
    assert ok.status_code == 201 and ok.json()["witness"] == "user:li.canteen"

    # Staff of another site: site A unseen answers 404, seen (a township viewer too) 403.
    add_user(db, "zc.canteen", Role.STAFF, f"{ZHOUCHENG}/{site_b}")
    add_user(db, "zc.both", Role.STAFF, f"{ZHOUCHENG}/{site_b}")
    console_rows(
        db,
        "INSERT INTO grants SELECT id, :area, 'viewer' FROM users WHERE username = 'zc.both'",
        {"area": XIZHOU},
        write=True,
    )
    for name, code in (("zc.canteen", 404), ("zc.both", 403)):
        with closing(logged_in(c.url, name)) as other:
            token = {"X-CSRF-Token": other.get("/api/v1/me").json()["csrf_token"]}
            r = other.post(url, json={**body, "person_id": "P0006", "reason": "x"}, headers=token)
            assert r.status_code == code, (name, r.text)
            assert other.get(f"/sites/{site_a}/meals/manual").status_code == code
            seen = other.get(f"/sites/{site_a}").status_code
            assert seen == (200 if name == "zc.both" else 404)  # a township viewer sees the site
    staff.close()
    assert len(_points(c, f"\"device\" = '{HAND_DEVICE}'")) == 2  # P0003 and P0005 only

    # Self-healing walks the kiosks only: the console's seqs 1 and 7 are no kiosk's gap.
    assert sorted(p["seq"] for p in _points(c, f"\"device\" = '{HAND_DEVICE}'")) == [1, 7]
    healed = c.app.state.service.healer.round(now_us())
    assert healed.ran and healed.missing_seqs == 0 and healed.requested == []
    assert HAND_DEVICE not in healed.healed + healed.unhealed + healed.conflicts
    svc = c.app.state.service  # had it looked, it would have asked for seqs 2-6
    looked = reconcile.check(svc.query_storage, svc.registry, [HAND_DEVICE], (yesterday, today))
    assert [g.seqs for g in looked.gaps] == ["2-6"]

    # Every attempt is an audit row: who, the person, site, period and day, and the answer.
    rows = wait_for(lambda: (r := _audit(c)) and len(r) >= 9 and r)
    assert [(u, a, o, s) for u, a, o, _, s in rows[:2]] == [
        ("li.canteen", "create", "P0003", 303),
        ("li.canteen", "create", "P0003", 409),
    ]
    detail = json.loads(rows[0][3])
    assert detail["site"] == site_a and detail["period"] == "lunch"
    assert detail["day"] == yesterday.isoformat() and detail["seq"] == point["seq"]
    assert ("zc.canteen", 404) in {(r[0], r[4]) for r in rows}
    assert ("zc.both", 403) in {(r[0], r[4]) for r in rows}
    assert "忘带卡" not in json.dumps([r[3] for r in rows], ensure_ascii=False)  # no typed text


def test_viewers_and_finance_may_not_record(console: LiveConsole) -> None:
    site_a = console.ids["site_a"]
    db = console.service.settings.store("console")
    add_user(db, "fin.dali", Role.FINANCE, "dali/dalishi")
    url = f"/api/v1/sites/{site_a}/meals/manual"
    for name in ("view-a", "fin.dali"):
        with closing(logged_in(console.url, name)) as client:
            token = {"X-CSRF-Token": client.get("/api/v1/me").json()["csrf_token"]}
            body = {"person_id": "P0001", "meal_period": "lunch", "reason": "x"}
            assert client.post(url, json=body, headers=token).status_code == 403, name
            page = client.get(f"/sites/{site_a}")
            assert page.status_code == 200 and "hand-meal-link" not in page.text
    # B's canteen serves lunch only (its registry row): its manager may record, not a breakfast.
    site_b = console.ids["site_b"]
    with closing(logged_in(console.url, "mgr-b")) as manager:
        token = {"X-CSRF-Token": manager.get("/api/v1/me").json()["csrf_token"]}
        body = {"person_id": "P0007", "meal_period": "breakfast", "reason": "忘带卡"}
        r = manager.post(f"/api/v1/sites/{site_b}/meals/manual", json=body, headers=token)
        assert r.status_code == 400 and "不供应早餐" in r.json()["detail"]
        page = manager.get(f"/sites/{site_b}/meals/manual")
        assert page.status_code == 200 and 'value="breakfast"' not in page.text


def test_erasing_the_elder_keeps_the_hand_meal_counted_without_them(console: LiveConsole) -> None:
    c = console
    site_a = c.ids["site_a"]
    db = c.service.settings.store("console")
    add_user(db, "li.canteen", Role.STAFF, f"{XIZHOU}/{site_a}")
    day = (localtime.to_local(now_us(), TZ).date() - timedelta(days=1)).isoformat()
    body = {"person_id": "P0003", "meal_period": "lunch", "day": day, "reason": "张阿姨忘带卡"}
    with closing(logged_in(c.url, "li.canteen")) as staff:
        token = {"X-CSRF-Token": staff.get("/api/v1/me").json()["csrf_token"]}
        url = f"/api/v1/sites/{site_a}/meals/manual"
        assert staff.post(url, json=body, headers=token).status_code == 201
    with closing(logged_in(c.url, "root-admin")) as admin:
        token = {"X-CSRF-Token": admin.get("/api/v1/me").json()["csrf_token"]}
        r = admin.post("/api/v1/registry/people/P0003/erase", headers=token)
        assert r.status_code == 200, r.text
        month = day[:7]
        sheet = admin.get("/api/v1/reports/meals", params={"area": XIZHOU, "month": month})
        assert sheet.json()["total"]["manual"] == 1  # still counted, by hand
    rows = console_rows(db, "SELECT person_id, reason FROM hand_meals")
    ((person, reason),) = rows
    assert person.startswith("erased-") and reason == ""
    (point,) = _points(c, f"\"device\" = '{HAND_DEVICE}'")
    assert point["person_id"] == person and point["manual"] is True


def test_the_card_tapped_after_the_hand_meal_replaces_it(
    browser: Browser, console: LiveConsole, mosquitto: Any
) -> None:
    """Staff record P0006's lunch by hand; then the elder's card is tapped at the canteen kiosk
    for that lunch (a real Kiosk, its clock in yesterday's lunch as an offline kiosk's backlog
    would be): the meal counts once, the kiosk's, and the 补录 page says the card replaced it."""
    c = console
    site_a = c.ids["site_a"]
    add_user(c.service.settings.store("console"), "li.canteen", Role.STAFF, f"{XIZHOU}/{site_a}")
    yesterday = localtime.to_local(now_us(), TZ).date() - timedelta(days=1)
    body = {"person_id": "P0006", "meal_period": "lunch", "day": yesterday.isoformat()}
    staff = logged_in(c.url, "li.canteen")
    csrf = {"X-CSRF-Token": staff.get("/api/v1/me").json()["csrf_token"]}
    r = staff.post(
        f"/api/v1/sites/{site_a}/meals/manual", json={**body, "reason": "忘带卡"}, headers=csrf
    )
    assert r.status_code == 201, r.text
    assert len(_points(c, f"\"device\" = '{HAND_DEVICE}'")) == 1

    lunch = localtime.to_us(datetime.combine(yesterday, time(12, 10), tzinfo=localtime.zone(TZ)))
    clock = OffsetClock((lunch - now_us()) / 1e6)
    with kiosk(c, c.ids["canteen_a"], mosquitto.port, clock) as (_gateway, reader):
        reader.tap("04A1B206")  # P0006's card
        wait_for(lambda: not _points(c, f"\"device\" = '{HAND_DEVICE}'"), timeout=20)
    (meal,) = _points(c, "\"person_id\" = 'P0006' AND \"kind\" = 'meal'")
    assert meal["device"] == c.ids["canteen_a"] and meal["meal_period"] == "lunch"

    doc = staff.get(
        "/api/v1/reports/meals",
        params={"area": f"{XIZHOU}/{site_a}", "month": yesterday.strftime("%Y-%m")},
    ).json()
    (row,) = [r for r in doc["rows"] if r["person_id"] == "P0006"]
    assert row["meals"]["lunch"] == 1 and row["manual"]["lunch"] == 0
    staff.close()
    (replaced,) = console_rows(
        c.service.settings.store("console"), "SELECT replaced_by FROM hand_meals"
    )
    assert replaced[0] == f"{c.ids['canteen_a']}#{meal['seq']}"

    page = browser_login(browser, c.url, "li.canteen", path=f"/sites/{site_a}/meals/manual")
    page.set_viewport_size({"width": 390, "height": 844})
    row_text = page.locator("#hand-meals tbody tr.replaced").inner_text()
    assert "已由终端刷卡记录取代，只计一次" in row_text and c.ids["canteen_a"] in row_text
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.errors == []  # type: ignore[attr-defined]
