"""Every panel of deploy/grafana/warmcard.json, its variables substituted as Grafana does, run on
the real InfluxDB holding demo courtyards' days, returns what the console shows for the same
scope and range: the overview (today), the site page (recent days), the monthly report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cloud_ingest.console import db as console_db
from cloud_ingest.ops.grafana_areas import SITE_AREAS, publish_areas
from cloud_ingest.pipeline.influx import InfluxV1, Series
from cloud_ingest.registry import areas
from cloud_ingest.web.app import create_app
from tests.support.console import auth_config, logged_in, serve
from tests.support.grafana import (
    dashboard_queries,
    demo_taps,
    interpolate,
    recent_days,
    resolve_variables,
)
from tests.support.ingest import make_settings, wait_for
from warmcard import localtime
from warmcard.command.demo import DEMO_ADMIN, import_seed, setup_console, write_seed_csvs
from warmcard.command.demo_seed import make_seed
from warmcard.timestamps import now_us

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "warmcard.json"
TZ = "Asia/Shanghai"
DAYS = 9  # today and the 8 days before: the site page's history and (part of) a month
CITY = "dali/dali-city"
XIZHOU = "dali/dali-city/xizhou"
SITE = "xizhou-zhoucheng"
# (console area, the dashboard's choices); what is not chosen stays "All".
SCOPES = [
    ("dali", {}),
    (CITY, {"county": CITY}),
    (XIZHOU, {"county": CITY, "township": XIZHOU}),
    (f"{XIZHOU}/{SITE}", {"county": CITY, "township": XIZHOU, "site": SITE}),
]


def _scalar(series: list[Series]) -> int:
    return int(series[0].values[0][1] or 0) if series and series[0].values else 0


def _by_tag(series: list[Series], tag: str) -> dict[str, int]:
    return {s.tags[tag]: int(s.values[0][1]) for s in series if s.values and s.values[0][1]}


def _daily(series: list[Series]) -> dict[tuple[str, str], int]:
    return {
        (s.tags["site"], localtime.to_local(int(ts), TZ).date().isoformat()): int(n)
        for s in series
        for ts, n in s.values
        if n
    }


@pytest.fixture
def demo(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    """The demo's six courtyards, areas and admin, and DAYS of their taps in InfluxDB."""
    sites = make_seed(6, 7)
    csvs = write_seed_csvs(tmp_path / "seed", sites, {
        "opening": "07:00", "closing": "19:00", "breakfast": "07:00-09:00",
        "lunch": "11:00-13:00", "dinner": "17:00-19:00",
    })  # fmt: skip
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    import_seed(settings.registry_path, csvs)
    passwords = setup_console(settings.console_db, tmp_path / "seed", sites)
    now = now_us()
    today = localtime.to_local(now, TZ).date()
    storage = InfluxV1(settings.influx)
    console = console_db.open_store(settings.console_db)
    try:
        storage.ensure_database()
        lines = demo_taps(sites, recent_days(today, DAYS), now)
        storage.write(lines)
        assert publish_areas(console, storage, now) == 6
    finally:
        console.close()
        storage.close()
    app = create_app(settings, auth=auth_config(settings.console_db))
    with serve(app) as url:
        wait_for(lambda: app.state.service.live.last_sync_us, timeout=30)
        client = logged_in(url, DEMO_ADMIN[0], passwords[DEMO_ADMIN[0]])
        yield settings, client, today, len(lines)
        client.close()


def _console(client: Any, area: str, today: date) -> dict[str, Any]:
    """What the console shows for `area`: the overview's roll-up and rows (one site's page for
    a site), the site page's history, and the monthly report of today's month."""
    site = area.rsplit("/", 1)[-1] if area.count("/") == 3 else None
    if site is None:
        page = client.get("/api/v1/overview", params={"area": area, "page_size": 200}).json()
        rows, totals = page["sites"], page["rollup"]["scope"]
    else:
        row = client.get(f"/api/v1/sites/{site}").json()
        rows, totals = [row], row
    histories = [
        client.get(f"/api/v1/sites/{r['site_id']}/history", params={"days": DAYS}).json()
        for r in rows
    ]
    report = client.get(
        "/api/v1/reports/monthly", params={"area": area, "month": today.strftime("%Y-%m")}
    )
    assert report.status_code == 200, report.text
    return {"rows": rows, "totals": totals, "histories": histories, "report": report.json()}


def test_every_panel_matches_the_console(demo):
    settings, client, today, points = demo
    assert points > 1000  # six courtyards, nine days
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dict(dashboard_queries(dashboard))
    ranges = {
        "today": localtime.day_bounds_us(today, TZ),
        "month": localtime.month_bounds_us(today.year, today.month, TZ),
        "recent": (
            localtime.day_bounds_us(recent_days(today, DAYS)[0], TZ)[0],
            localtime.day_bounds_us(today, TZ)[1],
        ),
    }
    storage = InfluxV1(settings.influx)
    checked: Counter[str] = Counter()

    def run(title: str, values: dict[str, list[str]], when: str) -> list[Series]:
        checked[title] += 1
        return storage.query(interpolate(panels[title], values, ranges[when]))

    try:
        for area, chosen in SCOPES:
            values = resolve_variables(dashboard, storage, chosen)
            shown = _console(client, area, today)
            rows, totals, report = shown["rows"], shown["totals"], shown["report"]
            # The site variable narrowed by county and township is exactly the console's sites.
            assert sorted(values["site"]) == sorted(r["site_id"] for r in rows), area
            assert sorted(values["site"]) == sorted(s["site_id"] for s in report["sites"])

            # Today: the overview (a site's page for a site).
            for title, figure in (
                ("签到人数 People checked in", totals["arrivals"]),
                ("用餐 Meals served", totals["meals_total"]),
                ("重复用餐提醒 Meal repeats", totals["meal_repeats"]),
                ("未知卡 Unknown cards", sum(r["unknown_cards"] for r in rows)),
            ):
                assert _scalar(run(title, values, "today")) == figure, (area, title)
            by_period: Counter[str] = Counter()
            for r in rows:
                by_period.update(r["meals"])
            got = _by_tag(run("按餐次 Meals by period", values, "today"), "meal_period")
            assert got == {p: n for p, n in by_period.items() if n}, area
            got = _by_tag(run("各站点用餐 Meals per site", values, "today"), "site")
            assert got == {r["site_id"]: r["meals_total"] for r in rows if r["meals_total"]}

            # This month: the monthly report.
            assert _scalar(run("用餐 Meals served", values, "month")) == report["meals_total"]
            assert (
                _scalar(run("用餐长者(去重) Distinct elders served", values, "month"))
                == report["elders_served"]
            ), area
            meals = {(d["site_id"], d["date"]): d["meals_total"] for d in report["days"]}
            attendance = {(d["site_id"], d["date"]): d["attendance"] for d in report["days"]}
            assert _daily(run("每日用餐 Meals per day", values, "month")) == {
                k: n for k, n in meals.items() if n
            }, area
            assert _daily(run("每日签到人数 People checked in per day", values, "month")) == {
                k: n for k, n in attendance.items() if n
            }, area

            # The last DAYS days: the site pages' history.
            hist_meals, hist_people = {}, {}
            for h in shown["histories"]:
                for day, m, a in zip(h["days"], h["meals"], h["arrivals"], strict=True):
                    hist_meals[(h["site_id"], day)] = m
                    hist_people[(h["site_id"], day)] = a
            assert _daily(run("每日用餐 Meals per day", values, "recent")) == {
                k: n for k, n in hist_meals.items() if n
            }, area
            assert _daily(run("每日签到人数 People checked in per day", values, "recent")) == {
                k: n for k, n in hist_people.items() if n
            }, area
            assert sum(hist_meals.values()) > 0
    finally:
        storage.close()
    # Every panel was run against the console, in every scope.
    assert set(checked) == set(panels)
    assert all(n >= len(SCOPES) for n in checked.values())


def test_moving_a_site_moves_it_in_the_variables(demo, tmp_path):
    """Derived in queries: re-placing a site and publishing again moves all its days at once."""
    settings, _client, today, _points = demo
    console = console_db.open_store(settings.console_db)
    storage = InfluxV1(settings.influx)
    try:
        # The site's leaf moves from Xizhou (Dali City) to Cibihu (Eryuan county).
        csv = tmp_path / "move.csv"
        csv.write_text(
            f"path,name_zh,name_en\ndali/eryuan/cibihu/{SITE},周城小院,Zhoucheng\n",
            encoding="utf-8",
        )
        with console.write() as conn:
            conn.execute(text("DELETE FROM areas WHERE site_id = :site"), {"site": SITE})
            areas.import_areas_csv(conn, csv)
        config = tmp_path / "ingest.toml"
        config.write_text(
            f'console_db = "{settings.console_db}"\n[influx]\nurl = "{settings.influx.url}"\n'
            f'database = "{settings.influx.database}"\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "warmcard", "grafana", "areas", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "6 site(s)" in done.stdout
        dashboard = json.loads(DASHBOARD.read_text())
        eryuan = resolve_variables(dashboard, storage, {"county": "dali/eryuan"})
        city = resolve_variables(dashboard, storage, {"county": CITY})
        month = localtime.month_bounds_us(today.year, today.month, TZ)
        meals = dict(dashboard_queries(dashboard))["用餐 Meals served"]
        (moved,) = storage.query(interpolate(meals, eryuan, month))
        (mapping,) = storage.query(f'SELECT count("placed") FROM "{SITE_AREAS}"')
    finally:
        storage.close()
        console.close()
    assert eryuan["township"] == ["dali/eryuan/cibihu"] and eryuan["site"] == [SITE]
    assert XIZHOU not in city["township"] and SITE not in city["site"]  # no stale series
    assert moved.values[0][1] > 0  # its past days count under its new county
    assert mapping.values[0][1] == 6
