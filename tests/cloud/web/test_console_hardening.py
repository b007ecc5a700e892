# mypy: allow-untyped-defs
"""The console on a real uvicorn, Mosquitto and InfluxDB: live streams end soon after their user
is disabled or loses a grant, even while taps keep them busy; every answer but static assets
carries no-store and nosniff (every GET route, from app.routes); /openapi.json, and timeline
days at the ends of the calendar."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud_ingest.console.accounts import AccountStore
from tests.support.console import FAST_HASHER, LiveConsole, app_routes, live_console, logged_in
from tests.support.ingest import TZ, EventMaker, wait_for
from warmcard.contract import Kind


@pytest.fixture
def console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[LiveConsole]:
    with live_console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) as running:
        yield running


# Streams re-check every 5 s (sse.RECHECK_S, docs/console-access.md); 2 s for a loaded machine.
LIMIT_S = 5.0 + 2.0


class Listener:
    """Reads an SSE stream in a thread; `events` holds (name, monotonic time) of each event."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        self.client, self.path = client, path
        self.events: list[tuple[str, float]] = []
        self.ended_at: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with self.client.stream("GET", self.path, timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("event: "):
                    self.events.append((line[7:], time.monotonic()))
                if self.stop.is_set():
                    return
        self.ended_at = time.monotonic()

    def after(self, t: float) -> int:
        return sum(1 for _, at in self.events if at > t)


def test_streams_end_when_the_user_is_disabled_or_loses_the_grant(console: LiveConsole) -> None:
    ids = console.ids
    viewer, manager = logged_in(console.url, "view-a"), logged_in(console.url, "mgr-a")
    overview = Listener(viewer, f"/api/v1/overview/stream?site={ids['site_a']}")
    occupancy = Listener(manager, f"/api/v1/stream?site={ids['site_a']}")
    wait_for(lambda: overview.events and occupancy.events)

    # A tap every 0.25 s: the streams are never idle, so an idle-time check never comes.
    taps = threading.Event()
    gate = EventMaker(ids["gate_a"])

    def tap() -> None:
        for i in itertools.cycle(range(1, 7)):
            if taps.wait(0.25):
                return
            console.publisher.publish([gate.make(Kind.CHECK_IN, f"P{i:04d}")])

    tapper = threading.Thread(target=tap, daemon=True)
    tapper.start()
    wait_for(lambda: len(overview.events) > 3 and len(occupancy.events) > 3)

    store = AccountStore(console.tmp / "console.sqlite3", time.time, FAST_HASHER)
    changed = time.monotonic()
    store.set_disabled("view-a", True)
    store.revoke("mgr-a", "dali/dalishi/xizhou")
    store.close()

    try:
        overview.thread.join(LIMIT_S + 3)
        occupancy.thread.join(max(0.1, changed + LIMIT_S + 3 - time.monotonic()))
    finally:
        taps.set()
        overview.stop.set()
        occupancy.stop.set()
        tapper.join(5)
    print(
        f"\nafter disable: {overview.after(changed)} overview events; after revoke: "
        f"{occupancy.after(changed)} occupancy events; streams ended after "
        + ", ".join(
            "still open" if x.ended_at is None else f"{x.ended_at - changed:.1f} s"
            for x in (overview, occupancy)
        )
    )
    for stream in (overview, occupancy):
        assert stream.ended_at is not None, "the stream outlived its user's access"
        assert stream.ended_at - changed < LIMIT_S
        assert stream.after(changed + LIMIT_S) == 0
    # Reconnecting does not get them back.
    assert viewer.get(f"/api/v1/overview/stream?site={ids['site_a']}").status_code == 401
    assert manager.get(f"/api/v1/stream?site={ids['site_a']}").status_code == 404
    viewer.close()
    manager.close()


PARAMS = {
    "site_id": "{site_a}",
    "person_id": "P0001",
    "card_uid": "04A1B201",
    "device_id": "{gate_a}",
    "alert_id": "1",
    "letter_id": "1",
    "capture_id": "1",
    "area_path": "dali",
    "username": "mgr-a",
}
CACHEABLE = ("/static/", "/login.css")


def get_urls(console: LiveConsole) -> list[str]:
    """One URL per GET route of the app, path parameters filled with site A's objects."""
    month = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    urls = []
    for method, path in sorted(app_routes(console.app)):
        if method != "GET":
            continue
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS[m[1]].format(**console.ids), path)
        urls.append(url + (f"?month={month}" if "/reports" in url else ""))
    return urls


def test_every_answer_is_no_store_and_nosniff(console: LiveConsole) -> None:
    with closing(logged_in(console.url, "root-admin")) as admin:
        check_headers(console, admin)


def check_headers(console: LiveConsole, admin: httpx.Client) -> None:
    urls = get_urls(console)
    assert len(urls) > 30
    missing = []
    for url in urls:
        with admin.stream("GET", url) as r:  # streams: the headers are enough
            cache, sniff = (
                r.headers.get("cache-control", ""),
                r.headers.get("x-content-type-options"),
            )
        private = not url.startswith(CACHEABLE)
        if sniff != "nosniff" or (private and cache != "no-store"):
            missing.append(f"{r.status_code} {url}: cache-control={cache!r} nosniff={sniff!r}")
    assert not missing, f"{len(missing)} of {len(urls)} GET routes:\n" + "\n".join(missing)
    # The personal-data answers themselves, each 200 with its type.
    month = datetime.now(ZoneInfo(TZ)).strftime("%Y-%m")
    for url, kind in (
        (f"/api/v1/sites/{console.ids['site_a']}", "application/json"),
        ("/api/v1/registry/people.csv", "text/csv"),
        (f"/api/v1/reports/monthly.csv?month={month}", "text/csv"),
        (f"/api/v1/reports/monthly.xlsx?month={month}", "spreadsheetml"),
    ):
        r = admin.get(url)
        assert r.status_code == 200 and kind in r.headers["content-type"], url
        assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"]


def test_openapi_and_timeline_days(console: LiveConsole) -> None:
    timeline = f"/api/v1/sites/{console.ids['site_a']}/timeline?day="
    days = ("9999-12-31", "0001-01-01", "1999-12-31", "2024-02-30", "2024-05-01")
    with (
        httpx.Client(base_url=console.url, timeout=10) as anonymous,
        closing(logged_in(console.url, "root-admin")) as admin,
    ):
        answers = {
            "anonymous /openapi.json": anonymous.get("/openapi.json"),
            "admin /openapi.json": admin.get("/openapi.json"),
            **{day: admin.get(timeline + day) for day in days},
        }
    codes = {what: r.status_code for what, r in answers.items()}
    assert codes == {
        "anonymous /openapi.json": 401,
        "admin /openapi.json": 200,
        **dict.fromkeys(days[:-1], 422),
        "2024-05-01": 200,
    }
    assert "/api/v1/overview" in answers["admin /openapi.json"].json()["paths"]
    for day in days[:-1]:
        assert answers[day].json()["detail"].startswith("日期须为"), answers[day].text
