# mypy: allow-untyped-defs
"""County finance (县财政) in headless Chromium, on the real app over real Mosquitto and InfluxDB:
set the county's subsidy rates in the form (audited old → new), then walk the month's meal sheet
per elder for the county (page, CSV, XLSX, print): kiosk meals and hand-recorded ones (marked),
the category and amount per meal, totals per courtyard, per township and for the county."""

from __future__ import annotations

import csv
import io
import json
from contextlib import closing
from datetime import datetime, time, timedelta
from pathlib import Path

from openpyxl import load_workbook
from playwright.sync_api import Browser

from cloud_ingest.console.roles import Role
from tests.support.console import LiveConsole, add_user, browser_login, console_rows, logged_in
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard import localtime
from warmcard.contract import Kind, MealPeriod
from warmcard.timestamps import now_us

COUNTY = "dali/dalishi"
CATEGORY = "高龄老人助餐补贴"


def _record(c: LiveConsole, user: str, site: str, person: str, day: str) -> None:
    with closing(logged_in(c.url, user)) as client:
        token = {"X-CSRF-Token": client.get("/api/v1/me").json()["csrf_token"]}
        body = {"person_id": person, "meal_period": "lunch", "day": day, "reason": "忘带卡"}
        r = client.post(f"/api/v1/sites/{site}/meals/manual", json=body, headers=token)
        assert r.status_code == 201, r.text


def test_county_finance_sets_rates_and_walks_the_meal_sheet(
    browser: Browser, console: LiveConsole, shots: Path, tmp_path: Path
) -> None:
    c = console
    site_a, site_b = c.ids["site_a"], c.ids["site_b"]
    db = c.service.settings.store("console")
    add_user(db, "fin.dali", Role.FINANCE, COUNTY)
    add_user(db, "staff.a", Role.STAFF, f"{COUNTY}/xizhou/{site_a}")
    day = localtime.to_local(now_us(), TZ).date() - timedelta(days=1)
    month = day.strftime("%Y-%m")

    # The month: two kiosk meals at A, a 补录 at A by its staff and one at B by B's manager.
    def at(hh: int) -> int:
        return localtime.to_us(datetime.combine(day, time(hh, 0), tzinfo=localtime.zone(TZ)))

    kiosk = EventMaker(c.ids["canteen_a"], base_us=at(12))
    c.publisher.publish([kiosk.make(Kind.MEAL, "P0001", MealPeriod.LUNCH)])
    kiosk.base_us = at(18) - kiosk.seq * 1000
    c.publisher.publish([kiosk.make(Kind.MEAL, "P0002", MealPeriod.DINNER)])
    storage = c.app.state.service.query_storage
    wait_for(lambda: sum(len(s.values) for s in storage.query("SELECT * FROM taps")) >= 2)
    _record(c, "staff.a", site_a, "P0003", day.isoformat())
    _record(c, "mgr-b", site_b, "P0007", day.isoformat())

    # Rates: from the reports page to the form; none yet, then set, then changed.
    page = browser_login(browser, c.url, "fin.dali", path="/reports")
    page.click("#subsidy-link")
    page.wait_for_url(f"{c.url}/reports/subsidy")
    assert "未配置" in page.locator(f'#subsidy-rates tr[data-county="{COUNTY}"]').inner_text()
    form = page.locator(f'form.subsidy[data-county="{COUNTY}"]')
    form.locator("input[name=category]").fill(CATEGORY)
    for period, amount in (("breakfast", "2"), ("lunch", "4"), ("dinner", "3.50")):
        form.locator(f"input[name={period}]").fill(amount)
    form.locator("button").click()
    page.locator("#subsidy-saved").wait_for()
    form = page.locator(f'form.subsidy[data-county="{COUNTY}"]')
    form.locator("input[name=lunch]").fill("4.50")
    form.locator("button").click()
    page.locator("#subsidy-saved").wait_for()
    row = page.locator(f'#subsidy-rates tr[data-county="{COUNTY}"]').inner_text()
    assert CATEGORY in row and "4.50" in row and "3.50" in row and "fin.dali" in row
    page.screenshot(path=str(shots / "console-finance-subsidy.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 860})

    # The meal sheet for the county: chosen on the reports page.
    page.goto(f"{c.url}/reports")
    page.select_option("#report-form select[name=area]", COUNTY)
    page.fill("#report-form input[name=month]", month)
    page.click("#report-form button")
    page.click("#meal-sheet")
    page.wait_for_url("**/reports/meals?*")
    rows = {
        r.split("\t")[2]: r.split("\t")
        for r in page.locator("#meal-rows tbody tr").all_inner_texts()
    }
    assert set(rows) == {"P0001", "P0002", "P0003", "P0007"}
    assert rows["P0001"][5:8] == ["0", "1", "0"] and rows["P0001"][-1] == "4.50"
    assert rows["P0002"][5:8] == ["0", "0", "1"] and rows["P0002"][-1] == "3.50"
    assert rows["P0003"][6] == "1*" and rows["P0003"][9] == "1" and rows["P0003"][-2] == CATEGORY
    assert rows["P0007"][6] == "1*" and rows["P0007"][1] == "周城幸福小院"
    totals = [r.split("\t") for r in page.locator("#meal-totals tbody tr").all_inner_texts()]
    assert totals[0][1:] == ["喜洲幸福小院", "3", "1", "12.50"]
    assert totals[1][1:] == ["周城幸福小院", "1", "1", "4.50"]
    assert [t[1] for t in totals[2:4]] == ["小计", "小计"]  # the zh-CN page: one language
    assert totals[-1] == ["合计", "", "4", "2", "17.00"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # the table scrolls

    # The same as JSON, in the finance user's session.
    doc = page.request.get(f"{c.url}/api/v1/reports/meals?area={COUNTY}&month={month}").json()
    by_person = {r["person_id"]: r for r in doc["rows"]}
    assert by_person["P0003"]["manual"]["lunch"] == 1 and by_person["P0001"]["manual"]["lunch"] == 0
    assert {r["subsidy_category"] for r in doc["rows"]} == {CATEGORY}
    assert [(t["key"], t["subsidy_amount"]) for t in doc["townships"]] == [
        (f"{COUNTY}/xizhou", "12.50"),
        (f"{COUNTY}/zhoucheng", "4.50"),
    ]
    assert doc["total"] == {"key": "", "meals": 4, "manual": 2, "subsidy_amount": "17.00"}

    # CSV and XLSX as the browser downloads them.
    with page.expect_download() as got:
        page.click("#meals-csv")
    text = Path(got.value.path()).read_bytes().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert got.value.suggested_filename == f"warmcard-meals-dali-dalishi-{month}.csv"
    p3 = next(r for r in lines if r[2:3] == ["P0003"])
    assert p3[6] == "1*" and p3[10] == "午餐 Lunch" and p3[11:] == [CATEGORY, "4.50"]
    assert lines[-1][:5] == ["合计 Total", "", "4", "2", "17.00"]
    with page.expect_download() as got:
        page.click("#meals-xlsx")
    book = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()))
    detail = list(book["用餐明细 Meals per elder"].iter_rows(min_row=2, values_only=True))
    assert [r[2] for r in detail] == ["P0001", "P0002", "P0003", "P0007"]
    assert detail[2][6] == "1*" and detail[2][-1] == 4.5
    assert list(book["合计 Totals"].iter_rows(values_only=True))[-1] == (
        "合计 Total", None, 4, 2, 17.0
    )  # fmt: skip

    # Print: the console's header and buttons hidden, the signatures kept; an A4 PDF.
    page.emulate_media(media="print")
    assert page.locator("header").first.is_hidden() and page.locator("#meals-csv").is_hidden()
    assert page.locator("#signatures").is_visible()
    page.screenshot(path=str(shots / "console-finance-meal-sheet.png"), full_page=True)
    pdf = page.pdf()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000
    page.emulate_media(media="screen")
    assert page.errors == []  # type: ignore[attr-defined]

    # Who may set the rates: a viewer of the county sees them (403), A's manager not even (404).
    add_user(db, "view.county", Role.VIEWER, COUNTY)
    body = {"county": COUNTY, "category": "x", "lunch": "9"}
    for name, code in (("view.county", 403), ("mgr-a", 404)):
        with closing(logged_in(c.url, name)) as client:
            token = {"X-CSRF-Token": client.get("/api/v1/me").json()["csrf_token"]}
            assert (
                client.put("/api/v1/reports/subsidy", json=body, headers=token).status_code == code
            )
    # Every change is an audit row: who, the county, the old and the new rates.
    audit = console_rows(
        db,
        "SELECT username, action, object_id, detail, status FROM audit_log "
        "WHERE object_kind = 'subsidy' AND action = 'edit' ORDER BY seq",
    )
    first, second = json.loads(audit[0][3]), json.loads(audit[1][3])
    assert audit[0][:3] == ("fin.dali", "edit", COUNTY) and audit[0][4] == 303
    assert first["old"] is None and first["new"]["lunch"] == "4.00"
    assert second["old"]["lunch"] == "4.00" and second["new"]["lunch"] == "4.50"
    assert second["new"]["category"] == CATEGORY
    assert [(a[0], a[4]) for a in audit[2:]] == [("view.county", 403), ("mgr-a", 404)]
