# mypy: allow-untyped-defs
"""Monthly reports on real InfluxDB: exact numbers on a small known month, site-tz day
boundaries, CSV/XLSX downloads with formulas neutralised, per-area access, `warmcard report`."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from typer.testing import CliRunner

from cloud_ingest.alerts.report_visits import AlertVisits
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.reports import monthly_report
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.lineprotocol import encode_tap
from tests.support.console import client_as, close_unstarted, console_app, console_db_for
from tests.support.ingest import make_settings, write_registry
from tests.support.stack import Stack
from warmcard.command.cli import app as warmcard_app
from warmcard.contract import Kind, MealPeriod, TapEvent
from warmcard.timestamps import format_ts, new_event_id

EVIL = "=cmd|' /C calc'!A0"


def utc(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1_000_000


class Taps:
    """Tap points as ingest writes them, one strictly increasing seq per device."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.seq: dict[str, int] = {}

    def add(self, device, site, ts, kind, person=None, meal=None, witness=None):
        self.seq[device] = self.seq.get(device, 0) + 1
        event = TapEvent(
            manual=witness is not None,
            witness_card=witness,
            event_id=new_event_id(ts),
            device_id=device,
            seq=self.seq[device],
            ts=format_ts(ts),
            card_uid="04A1B2C3",
            kind=kind,
            meal_period=meal,
            person_id=person,
        )
        self.lines.append(encode_tap(event, site, ts))


def record_visits(db, site_paths: dict[str, str]) -> AlertVisits:
    """Visits recorded as the alerts pages record them, around November's local bounds."""
    store = AlertStore.open(db)
    a, b = site_paths.values()
    for person, path, ts in (
        ("P0001", a, utc(2026, 10, 31, 15, 30)),  # Oct 31 23:30 local: October
        ("P0001", a, utc(2026, 10, 31, 16, 30)),  # Nov 1 00:30 local
        ("P0002", a, utc(2026, 11, 12, 2, 0)),
        ("P0007", b, utc(2026, 11, 30, 15, 0)),  # Nov 30 23:00 local
        ("P0008", b, utc(2026, 11, 30, 16, 30)),  # Dec 1 00:30 local: December
    ):
        store.record_visit(person, path, ts, "watcher", "在家", None)
    store.close()
    return AlertVisits(db)


@pytest.fixture
def month(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    a, b = ids["site_a"], ids["site_b"]
    gate, canteen, gate_b = ids["gate_a"], ids["canteen_a"], ids["gate_b"]
    t = Taps()
    L, D = MealPeriod.LUNCH, MealPeriod.DINNER
    # Local (Asia/Shanghai, UTC+8) October 31 23:59: not November.
    t.add(canteen, a, utc(2026, 10, 31, 15, 59), Kind.MEAL, "P0006", D)
    # Local November 1 00:10 is still October 31 in UTC: November 1 locally.
    t.add(canteen, a, utc(2026, 10, 31, 16, 10), Kind.MEAL, "P0005", D)
    t.add(gate, a, utc(2026, 11, 1, 1, 0), Kind.CHECK_IN, "P0001")
    t.add(gate, a, utc(2026, 11, 1, 1, 5), Kind.CHECK_IN, "P0002")
    t.add(gate, a, utc(2026, 11, 1, 5, 0), Kind.CHECK_OUT, "P0001")
    t.add(gate, a, utc(2026, 11, 1, 6, 0), Kind.CHECK_IN, "P0001")  # back after lunch: once
    t.add(gate, a, utc(2026, 11, 1, 6, 1), Kind.UNKNOWN_CARD)
    t.add(canteen, a, utc(2026, 11, 1, 4, 0), Kind.MEAL, "P0001", L)
    t.add(canteen, a, utc(2026, 11, 1, 4, 1), Kind.MEAL, "P0002", L)
    t.add(canteen, a, utc(2026, 11, 1, 4, 2), Kind.MEAL_REPEAT, "P0001", L)  # not a meal
    # 23:30 local, Nov 1; P0003 forgot the card: staff recorded it by hand (manual).
    t.add(canteen, a, utc(2026, 11, 1, 15, 30), Kind.MEAL, "P0003", D, witness="04FFEE01")
    # Local November 2 00:30 is November 1 16:30 UTC: counts on November 2.
    t.add(gate, a, utc(2026, 11, 1, 16, 30), Kind.CHECK_IN, "P0004")
    t.add(canteen, a, utc(2026, 11, 1, 16, 40), Kind.MEAL, "P0001", D)
    t.add(gate_b, b, utc(2026, 11, 3, 1, 0), Kind.CHECK_IN, "P0007")
    t.add(gate_b, b, utc(2026, 11, 3, 1, 1), Kind.CHECK_IN, "P0008")
    t.add(gate_b, b, utc(2026, 11, 30, 15, 59), Kind.CHECK_IN, "P0009")  # Nov 30 23:59 local
    # Local December 1 00:10 is November 30 in UTC: not November.
    t.add(gate_b, b, utc(2026, 11, 30, 16, 10), Kind.CHECK_IN, "P0010")
    t.add(canteen, a, utc(2026, 11, 30, 16, 10), Kind.MEAL, "P0004", D)
    storage = InfluxV1(settings.influx)
    storage.write(t.lines)
    service = Stack(settings)  # not started: reports read InfluxDB directly
    yield ids, settings, service, storage
    storage.close()
    close_unstarted(service)


def test_numbers_exact_with_site_tz_day_boundaries(month, tmp_path):
    ids, _, service, storage = month
    a, b = ids["site_a"], ids["site_b"]
    sites = [service.registry.site(a), service.registry.site(b)]
    paths = {a: f"dali/x/{a}", b: f"dali/y/{b}"}
    visits = record_visits(tmp_path / "alerts.sqlite3", paths)
    report = monthly_report(storage, sites, "dali", "2026-11", visits)
    nov = lambda d: date(2026, 11, d)  # noqa: E731
    assert report.meals == {
        (a, nov(1)): {"breakfast": 0, "lunch": 2, "dinner": 2},
        (a, nov(2)): {"breakfast": 0, "lunch": 0, "dinner": 1},
    }
    assert report.attendance == {(a, nov(1)): 2, (a, nov(2)): 1, (b, nov(3)): 2, (b, nov(30)): 1}
    assert report.elders_served == 4  # P0001, P0002, P0003, P0005 (P0006 ate in October)
    assert report.meals_total == 5
    assert report.manual == {(a, nov(1)): 1} and report.manual_total == 1  # counted and marked
    assert report.visits == 3  # local November only
    assert monthly_report(storage, sites[1:], "dali/y", "2026-11", visits).visits == 1
    assert len(report.days) == 30 and len(list(report.daily())) == 60
    only_b = monthly_report(storage, [service.registry.site(b)], "x", "2026-11")
    assert only_b.meals == {} and only_b.elders_served == 0 and only_b.visits is None


def test_report_api_downloads_and_area_access(month, tmp_path):
    ids, _, service, _ = month
    a = ids["site_a"]
    with service.registry.change() as db:
        db.execute(
            text("UPDATE sites SET name_zh = :name WHERE site_id = :site"),
            {"name": EVIL, "site": a},
        )
    app = console_app(service, console_db_for(tmp_path, ids))
    app.state.visits = record_visits(
        tmp_path / "alerts.sqlite3",
        {a: f"dali/dalishi/xizhou/{a}", ids["site_b"]: f"dali/dalishi/zhoucheng/{ids['site_b']}"},
    )
    viewer = client_as(app, "view-a")
    params = {"area": "dali/dalishi/xizhou", "month": "2026-11"}
    doc = viewer.get("/api/v1/reports/monthly", params=params).json()
    assert [s["site_id"] for s in doc["sites"]] == [a]  # site B is in another township
    assert (doc["meals_total"], doc["elders_served"], doc["visits"]) == (5, 4, 2)
    day1 = next(d for d in doc["days"] if d["date"] == "2026-11-01")
    assert day1 == {
        "date": "2026-11-01",
        "site_id": a,
        "attendance": 2,
        "meals": {"breakfast": 0, "lunch": 2, "dinner": 2},
        "meals_total": 4,
        "manual": 1,
    }
    # Another area, a parent area the viewer is not granted, or a bad month.
    for other in ("dali/dalishi/zhoucheng", "dali", "nowhere/x"):
        r = viewer.get("/api/v1/reports/monthly", params={**params, "area": other})
        assert r.status_code == 404, other
    assert (
        viewer.get("/api/v1/reports/monthly", params={**params, "month": "2026-13"}).status_code
        == 422
    )

    r = viewer.get("/api/v1/reports/monthly.csv", params=params)
    assert (
        r.status_code == 200
        and "dali-dalishi-xizhou-2026-11.csv" in r.headers["content-disposition"]
    )
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "日期 Date"
    first = rows[1]
    assert first[:3] == ["2026-11-01", a, "'" + EVIL] and first[3:] == [
        "2",
        "0",
        "2",
        "2",
        "4",
        "1",
    ]
    assert not any(cell.startswith("=") for row in rows for cell in row)
    summary = {row[0]: row[-1] for row in rows if row[0] and not row[0][0].isdigit()}
    assert summary["用餐长者(去重) Distinct elders served"] == "4"
    assert summary["探访次数 Visits made"] == "2"

    r = viewer.get("/api/v1/reports/monthly.xlsx", params=params)
    assert r.status_code == 200
    book = load_workbook(io.BytesIO(r.content))
    daily = list(book["每日 Daily"].iter_rows(values_only=True))
    assert daily[1][2] == "'" + EVIL
    assert daily[1][3:] == (2, 0, 2, 2, 4, 1)  # the last: of which by hand
    summary_sheet = dict(book["汇总 Summary"].iter_rows(min_row=2, values_only=True))
    assert summary_sheet["用餐合计 Meals served"] == 5

    page = viewer.get("/reports", params=params)
    assert page.status_code == 200 and "monthly.xlsx" in page.text and "=cmd|&#39;" in page.text


def test_warmcard_report_command(month, tmp_path):
    ids, settings, _, _ = month
    db = console_db_for(tmp_path, ids)
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'registry_path = "{settings.registry_path}"\n\n[influx]\n'
        f'url = "{settings.influx.url}"\ndatabase = "{settings.influx.database}"\n'
    )
    out = tmp_path / "report.xlsx"
    args = ["report", "--month", "2026-11", "--area", "dali/dalishi/xizhou"]
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(
        config.read_text().replace(
            "\n\n[influx]", f'\n\n[alerts]\ndb_path = "{tmp_path}/none"\n\n[influx]'
        )
    )
    result = CliRunner().invoke(
        warmcard_app,
        [*args, "--out", str(out), "--config", str(elsewhere), "--db", str(db)],
    )
    assert result.exit_code == 0, result.output
    assert "meals 5, distinct elders 4, visits —" in result.output
    assert "no alerts database" in result.output
    # With the alerts database beside the registry (where ingest keeps it): visits counted.
    placed = {ids["site_a"]: f"dali/dalishi/xizhou/{ids['site_a']}",
              ids["site_b"]: f"dali/dalishi/zhoucheng/{ids['site_b']}"}  # fmt: skip
    record_visits(settings.alerts_db_file, placed)
    result = CliRunner().invoke(
        warmcard_app,
        [*args, "--format", "xlsx", "--out", str(out), "--config", str(config), "--db", str(db)],
    )
    assert result.exit_code == 0, result.output
    assert "meals 5, distinct elders 4, visits 2" in result.output  # Xizhou's two in November
    book = load_workbook(out)
    summary = dict(book["汇总 Summary"].iter_rows(min_row=2, values_only=True))
    assert summary["探访次数 Visits made"] == 2
    rows = list(book["每日 Daily"].iter_rows(values_only=True))
    assert len(rows) == 1 + 30 and rows[1][3:] == (2, 0, 2, 2, 4, 1)
    out_csv = tmp_path / "report.csv"
    result = CliRunner().invoke(
        warmcard_app,
        [*args, "--format", "csv", "--out", str(out_csv), "--config", str(config), "--db", str(db)],
    )
    assert result.exit_code == 0 and out_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    bad = CliRunner().invoke(
        warmcard_app,
        ["report", "--month", "2026-11", "--area", "dali/nowhere", "--out", str(out),
         "--config", str(config), "--db", str(db)],
    )  # fmt: skip
    assert bad.exit_code == 1 and "unknown area" in bad.output
