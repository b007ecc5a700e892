# mypy: allow-untyped-defs
"""Every JSON and export meant for people shows times in the site's zone: a UTC wire time
(`2026-11-30T03:39:09Z`) in a JSON answer has its local twin beside it (`<field>_local`), and
the CSV and Excel exports hold none at all. Real app, Mosquitto and InfluxDB, with alerts, a
visit due, a meal recorded by hand and a kiosk's taps through the real pipeline."""

from __future__ import annotations

import io
import re
from contextlib import closing
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from cloud_ingest.console.roles import Role
from tests.support.console import LiveConsole, add_user, logged_in
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard.contract import DeviceStatus, Kind, MealPeriod, ReaderState, status_topic
from warmcard.timestamps import now_us

UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|\+00:00)")
LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?$")
DAY_US = 86_400_000_000


def is_wire_time(key: str, value: Any) -> bool:
    """A UTC time string, or wire microseconds in a field named for a moment (`*_at`, `*since`)."""
    if isinstance(value, str):
        return bool(UTC_TIME.fullmatch(value))
    moment = key.endswith(("_at", "since")) and not isinstance(value, bool)
    return moment and isinstance(value, int) and value > 10**15


def utc_without_local(doc: Any, path: str = "") -> list[str]:
    """JSON paths of wire times whose object has no local twin (`<key>_local`, or `<stem>_local`
    for `<stem>_at`) beside them."""
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if is_wire_time(key, value):
                twins = (doc.get(f"{key}_local"), doc.get(f"{key.removesuffix('_at')}_local"))
                if not any(isinstance(t, str) and LOCAL_TIME.match(t) for t in twins):
                    found.append(f"{path}.{key}={value}")
            else:
                found += utc_without_local(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += utc_without_local(value, f"{path}[{i}]")
    return found


def test_people_facing_json_and_exports_show_local_times(console: LiveConsole) -> None:
    c = console
    site_a, gate_a = c.ids["site_a"], c.ids["gate_a"]
    svc = c.app.state.service
    month = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    area = "dali/dalishi/xizhou"
    events = EventMaker(gate_a)
    c.publisher.publish([events.make(Kind.CHECK_IN, "P0001")])
    canteen = EventMaker(c.ids["canteen_a"])
    c.publisher.publish([canteen.make(Kind.MEAL, "P0002", MealPeriod.LUNCH)])
    fault = DeviceStatus(device_id=gate_a, state="online", reader=ReaderState.FAULT)
    c.publisher.publish_raw(status_topic(gate_a), fault.to_bytes(), retain=True)
    svc.alerts.store.set_flags([("P0005", "lives_alone", True)], now_us() - 5 * DAY_US)
    try:
        wait_for(lambda: {"reader_fault", "visit_due"} <= set(svc.alerts.store.counts([""])))
        add_user(svc.settings.store("console"), "staff.a", Role.STAFF, f"{area}/{site_a}")
        with closing(logged_in(c.url, "staff.a")) as staff:
            token = {"X-CSRF-Token": staff.get("/api/v1/me").json()["csrf_token"]}
            body = {"person_id": "P0003", "meal_period": "breakfast", "reason": "忘带卡"}
            yesterday = datetime.fromtimestamp(now_us() / 1e6 - 86400, ZoneInfo(TZ)).date()
            body["day"] = yesterday.isoformat()
            meal = staff.post(f"/api/v1/sites/{site_a}/meals/manual", json=body, headers=token)
            assert meal.status_code == 201 and LOCAL_TIME.match(meal.json()["recorded_local"])
        alert_id = svc.alerts.store.find([""], kinds=[], states=[])[0].id
        report = f"area={area}&month={month}"
        with closing(logged_in(c.url, "root-admin")) as admin:
            jsons = [
                "/api/v1/alerts",
                f"/api/v1/alerts/{alert_id}",
                "/api/v1/alerts/counts",
                "/api/v1/visits/due",
                f"/api/v1/reports/monthly?{report}",
                f"/api/v1/reports/meals?{report}",
                "/api/v1/registry/people?per_page=200",
                "/api/v1/registry/people/P0001",
                "/api/v1/registry/cards?per_page=200",
                "/api/v1/registry/devices?per_page=200",
                f"/api/v1/registry/devices/{gate_a}",
                f"/api/v1/sites/{site_a}",
                "/api/v1/overview",
                "/api/v1/audit",
            ]
            bad: dict[str, list[str]] = {}
            utc_seen = 0
            for url in jsons:
                r = admin.get(url)
                assert r.status_code == 200, (url, r.text[:200])
                utc_seen += len(UTC_TIME.findall(r.text)) + r.text.count("_at_local")
                if missing := utc_without_local(r.json()):
                    bad[url] = missing
            assert bad == {}
            assert utc_seen > 0  # there were UTC times to pair: the check above can fail
            exports = [
                f"/api/v1/reports/monthly.csv?{report}",
                f"/api/v1/reports/meals.csv?{report}",
                "/api/v1/registry/people.csv",
                "/api/v1/audit.csv",
                f"/api/v1/reports/monthly.xlsx?{report}",
                f"/api/v1/reports/meals.xlsx?{report}",
            ]
            for url in exports:
                r = admin.get(url)
                assert r.status_code == 200, url
                if url.split("?")[0].endswith(".xlsx"):
                    book = load_workbook(io.BytesIO(r.content))
                    text = " ".join(
                        str(v)
                        for s in book.worksheets
                        for row in s.iter_rows(values_only=True)
                        for v in row
                        if v is not None
                    )
                else:
                    text = r.content.decode("utf-8-sig")
                assert not UTC_TIME.search(text), (url, UTC_TIME.search(text))
    finally:
        c.publisher.publish_raw(status_topic(gate_a), b"", retain=True)
