# mypy: allow-untyped-defs
"""The per-elder monthly meal sheet on real InfluxDB (the monthly report's known month): rows per
person and local day, hand-recorded meals marked, county subsidy rates, totals per courtyard and
township, JSON, CSV, XLSX and the print page, per-area access."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from cloud_ingest.console import subsidy
from cloud_ingest.console.db import open_store
from cloud_ingest.errors import ReportError
from tests.cloud.console.test_reports import month  # noqa: F401  (the fixture)
from tests.support.console import client_as, console_app, console_db_for

PARAMS = {"area": "dali/dalishi/xizhou", "month": "2026-11"}
RATES = {"county": "dali/dalishi", "category": "高龄助餐", "lunch": "4", "dinner": "3.50"}


def test_meal_sheet_rows_marks_rates_and_totals(month, tmp_path):  # noqa: F811
    ids, _, service, _ = month
    a = ids["site_a"]
    app = console_app(service, console_db_for(tmp_path, ids))
    viewer, root = client_as(app, "view-a"), client_as(app, "root-admin")
    # Only an admin of the county sets its rates; a viewer of a township does not even see it.
    assert viewer.put("/api/v1/reports/subsidy", json=RATES).status_code == 404
    assert root.put("/api/v1/reports/subsidy", json={**RATES, "lunch": "1.234"}).status_code == 400
    assert root.put("/api/v1/reports/subsidy", json={**RATES, "county": "dali"}).status_code == 400
    set_ = root.put("/api/v1/reports/subsidy", json=RATES)
    assert set_.status_code == 200 and set_.json()["amounts"]["dinner"] == "3.50"

    doc = viewer.get("/api/v1/reports/meals", params=PARAMS).json()
    got = [(r["person_id"], r["date"], r["meals"], r["manual"]["dinner"]) for r in doc["rows"]]
    L = {"breakfast": 0, "lunch": 1, "dinner": 0}
    D = {"breakfast": 0, "lunch": 0, "dinner": 1}
    assert got == [
        ("P0001", "2026-11-01", L, 0),
        ("P0001", "2026-11-02", D, 0),  # 00:40 local on the 2nd: the site's day, not UTC's
        ("P0002", "2026-11-01", L, 0),
        ("P0003", "2026-11-01", D, 1),  # recorded by hand (staff card)
        ("P0005", "2026-11-01", D, 0),
    ]  # P0006 ate on local October 31 and P0004 on local December 1: not in November
    assert doc["rows"][0]["name"] == "长者1" and doc["rows"][0]["subsidy_category"] == "高龄助餐"
    assert [r["subsidy_amount"] for r in doc["rows"]] == ["4.00", "3.50", "4.00", "3.50", "3.50"]
    assert doc["total"] == {"key": "", "meals": 5, "manual": 1, "subsidy_amount": "18.50"}
    assert doc["sites"] == [{"key": a, "meals": 5, "manual": 1, "subsidy_amount": "18.50"}]
    assert [t["key"] for t in doc["townships"]] == ["dali/dalishi/xizhou"]

    r = viewer.get("/api/v1/reports/meals.csv", params=PARAMS)
    assert "warmcard-meals-dali-dalishi-xizhou-2026-11.csv" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:5] == [
        "乡镇 Township",
        "站点 Site",
        "人员编号 Person ID",
        "姓名 Name",
        "日期 Date",
    ]
    p3 = next(row for row in rows if row[2] == "P0003")
    assert p3[:9] == ["喜洲镇", "喜洲幸福小院", "P0003", "长者3", "2026-11-01", "0", "0", "1*", "1"]
    assert p3[9:] == ["1", "晚餐 Dinner", "高龄助餐", "3.50"]
    assert rows[-2][:5] == ["喜洲镇", "小计 Subtotal", "5", "1", "18.50"]
    assert rows[-1][:5] == ["合计 Total", "", "5", "1", "18.50"]

    book = load_workbook(
        io.BytesIO(viewer.get("/api/v1/reports/meals.xlsx", params=PARAMS).content)
    )
    detail = list(book["用餐明细 Meals per elder"].iter_rows(min_row=2, values_only=True))
    assert len(detail) == 5 and detail[3][7] == "1*" and detail[3][-1] == 3.5
    totals = list(book["合计 Totals"].iter_rows(min_row=2, values_only=True))
    assert totals[-1] == ("合计 Total", None, 5, 1, 18.5)

    page = viewer.get("/reports/meals", params=PARAMS)
    assert page.status_code == 200 and "食堂负责人签字" in page.text and "1*" in page.text
    # Township B is not the viewer's: 404 like the monthly report.
    other = {**PARAMS, "area": "dali/dalishi/zhoucheng"}
    assert viewer.get("/api/v1/reports/meals", params=other).status_code == 404


def test_subsidy_amounts_are_exact_and_bounded(store_at):
    """On SQLite and PostgreSQL: the amounts are stored as exact decimal text."""
    console = open_store(store_at("console"))
    with console.write() as conn:
        rate = subsidy.set_rate(conn, "dali/eryuan", " 助餐 ", {"lunch": "4.5"}, "admin", 1)
    assert rate.category == "助餐" and str(rate.amounts["lunch"]) == "4.50"
    with console.read() as conn:
        assert subsidy.get_rate(conn, "dali/eryuan") == rate
    for bad in ("-1", "abc", "1e9", "NaN", "0.001"):
        try:
            with console.write() as conn:
                subsidy.set_rate(conn, "dali/eryuan", "x", {"lunch": bad}, "admin", 2)
        except ReportError:
            continue
        raise AssertionError(bad)
    with console.write() as conn:  # a second set replaces the first
        again = subsidy.set_rate(conn, "dali/eryuan", "助餐", {"lunch": "5"}, "admin", 3)
    with console.read() as conn:
        assert subsidy.rates_for(conn, {"s": "dali/eryuan/xishan/s"}) == {"dali/eryuan": again}
    console.close()
