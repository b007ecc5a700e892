# mypy: allow-untyped-defs
"""The console's overview and site APIs on a real uvicorn, Mosquitto and InfluxDB:
per-area access, paging/search/sort, roll-ups, day curves and history, delta streams."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud_ingest.console.roles import Role
from cloud_ingest.web.app import create_app
from tests.support.console import add_user, auth_config, logged_in, place_sites, serve
from tests.support.ingest import (
    TZ,
    EventMaker,
    Publisher,
    import_registry_csv,
    make_settings,
    today_base_us,
    wait_for,
)
from tests.support.stack import Stack
from warmcard.contract import DeviceStatus, Kind, MealPeriod, ReaderState, status_topic
from warmcard.localtime import day_window

TOWNSHIPS = ("dali/dali-city/xizhou", "dali/dali-city/wanqiao", "dali/eryuan/niujie")
N_SITES = 24


def site_id(prefix: str, i: int) -> str:
    return f"{prefix}-s{i:02d}"


def write_many_sites(tmp: Path, prefix: str) -> None:
    """24 sites, 8 per township; a gate at each, a canteen at the even ones, 5 people each."""
    sites = ["site_id,name_zh,name_en,tz,capacity"]
    devices = ["device_id,site_id,mode"]
    people = ["person_id,display_name,site_id"]
    cards = ["card_uid,person_id"]
    for i in range(1, N_SITES + 1):
        s = site_id(prefix, i)
        sites.append(f"{s},第{i}幸福小院,Courtyard {i},{TZ},{10 + i}")
        devices.append(f"{s}-gate,{s},entrance")
        if i % 2 == 0:
            devices.append(f"{s}-canteen,{s},canteen")
        people += [f"P{i:02d}{k},长者{i}-{k},{s}" for k in range(5)]
        # Each person's card, as EventMaker spells it (ingest checks card -> person -> site).
        cards += [f"04A1B2{int(f'{i:02d}{k}'):02X},P{i:02d}{k}" for k in range(5)]
    for name, lines in (
        ("sites", sites),
        ("devices", devices),
        ("people", people),
        ("cards", cards),
    ):
        (tmp / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_registry_csv(tmp / "registry.sqlite3", tmp, "sites", "devices", "people", "cards")


def expected_day(i: int) -> tuple[int, int]:
    """Check-ins and meals the fixture publishes today at site i."""
    return i % 5, (i % 3 if i % 2 == 0 else 0)


@pytest.fixture
def console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[dict[str, Any]]:
    write_many_sites(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    place_sites(
        settings.console_db,
        {site_id(topic_prefix, i): TOWNSHIPS[(i - 1) // 8] for i in range(1, N_SITES + 1)},
    )
    add_user(settings.console_db, "root.admin", Role.ADMIN, "/")
    add_user(settings.console_db, "xizhou.view", Role.VIEWER, TOWNSHIPS[0])
    add_user(settings.console_db, "eryuan.mgr", Role.MANAGER, "dali/eryuan")
    app = create_app(settings, auth=auth_config(settings.console_db))
    publisher = Publisher(mosquitto.port)
    clients: list[httpx.Client] = []
    with serve(app) as url, Stack(settings, console=app.state.service) as service:
        events = []
        for i in range(1, N_SITES + 1):
            ins, meals = expected_day(i)
            gate, canteen = EventMaker(f"{site_id(topic_prefix, i)}-gate"), None
            events += [gate.make(Kind.CHECK_IN, f"P{i:02d}{k}") for k in range(ins)]
            if meals:
                canteen = EventMaker(f"{site_id(topic_prefix, i)}-canteen")
                events += [
                    canteen.make(Kind.MEAL, f"P{i:02d}{k}", MealPeriod.LUNCH) for k in range(meals)
                ]
        publisher.publish(events)
        wait_for(lambda: service.metrics.acked == len(events))

        def login(username: str) -> httpx.Client:
            clients.append(logged_in(url, username))
            return clients[-1]

        yield {
            "url": url,
            "service": service,
            "prefix": topic_prefix,
            "login": login,
            "publisher": publisher,
            "events": len(events),
        }
        for client in clients:
            client.close()
    publisher.close()


def all_pages(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        doc = client.get("/api/v1/overview", params={**params, "page": page}).json()
        rows += doc["sites"]
        if page >= doc["pages"]:
            return rows
        page += 1


def test_overview_paging_search_sort_and_rollups(console):
    admin = console["login"]("root.admin")
    p = console["prefix"]
    first = admin.get("/api/v1/overview", params={"page_size": 10}).json()
    assert (first["total"], first["pages"], len(first["sites"])) == (N_SITES, 3, 10)
    rows = all_pages(admin, page_size=10)
    assert sorted(r["site_id"] for r in rows) == [site_id(p, i) for i in range(1, N_SITES + 1)]
    assert len({r["site_id"] for r in rows}) == N_SITES  # no row on two pages
    for r in rows:
        i = int(r["site_id"][-2:])
        assert (r["present"], r["arrivals"], r["meals_total"]) == (
            expected_day(i)[0],
            expected_day(i)[0],
            expected_day(i)[1],
        )
        assert "present_people" not in r and "display_name" not in json.dumps(r)  # no names
    by_present = all_pages(admin, sort="-present", page_size=7)
    assert [r["present"] for r in by_present] == sorted((r["present"] for r in rows), reverse=True)
    # Search matches ids and names (zh and en), case-insensitively.
    found = admin.get("/api/v1/overview", params={"q": "COURTYARD 1"}).json()
    assert {r["site_id"] for r in found["sites"]} == {site_id(p, i) for i in (1, *range(10, 20))}
    assert admin.get("/api/v1/overview", params={"q": "第7幸福"}).json()["total"] == 1
    with_meals = all_pages(admin, has_meals="true")
    assert {r["site_id"] for r in with_meals} == {
        site_id(p, i) for i in range(1, N_SITES + 1) if expected_day(i)[1]
    }
    assert admin.get("/api/v1/overview", params={"sort": "bogus"}).status_code == 422
    # Roll-ups: township sums add up to county, county to prefecture.
    root = admin.get("/api/v1/overview", params={"area": ""}).json()["rollup"]
    assert root["scope"]["present"] == sum(r["present"] for r in rows)
    assert [c["path"] for c in root["children"]] == ["dali"]
    city = admin.get("/api/v1/overview", params={"area": "dali/dali-city"}).json()
    kids = {c["path"]: c for c in city["rollup"]["children"]}
    assert set(kids) == {TOWNSHIPS[0], TOWNSHIPS[1]}
    for k, township in enumerate(TOWNSHIPS[:2]):
        own = range(8 * k + 1, 8 * k + 9)
        assert kids[township]["present"] == sum(expected_day(i)[0] for i in own)
        assert kids[township]["meals_total"] == sum(expected_day(i)[1] for i in own)
        assert kids[township]["sites"] == 8
        assert kids[township]["capacity"] == sum(10 + i for i in own)
    assert city["rollup"]["scope"]["present"] == sum(c["present"] for c in kids.values())
    assert city["total"] == 16 and [t["path"] for t in city["rollup"]["trail"]] == ["", "dali"]


def test_offline_filter_follows_heartbeats(console):
    admin = console["login"]("root.admin")
    p = console["prefix"]
    assert admin.get("/api/v1/overview", params={"offline": "true"}).json()["total"] == N_SITES
    s2 = site_id(p, 2)
    for device in (f"{s2}-gate", f"{s2}-canteen"):
        status = DeviceStatus(
            device_id=device, state="online", outbox_depth=4, reader=ReaderState.OK
        )
        console["publisher"].publish_raw(status_topic(device), status.to_bytes(), retain=True)

    def offline_ids() -> set[str]:
        return {r["site_id"] for r in all_pages(admin, offline="true", page_size=200)}

    wait_for(lambda: s2 not in offline_ids())
    assert len(offline_ids()) == N_SITES - 1
    site = admin.get(f"/api/v1/sites/{s2}").json()
    assert {d["state"] for d in site["devices"]} == {"online"}
    assert {d["outbox_depth"] for d in site["devices"]} == {4}
    for device in (f"{s2}-gate", f"{s2}-canteen"):  # clear the retained statuses
        console["publisher"].publish_raw(status_topic(device), b"", retain=True)


def test_a_user_sees_only_their_area(console):
    p = console["prefix"]
    viewer = console["login"]("xizhou.view")
    doc = viewer.get("/api/v1/overview").json()
    assert doc["scope"] == TOWNSHIPS[0] and doc["total"] == 8
    assert {r["area_path"] for r in doc["sites"]} == {TOWNSHIPS[0]}
    assert doc["rollup"]["trail"] == []  # nothing above the grant is shown
    assert doc["rollup"]["scope"]["sites"] == 8
    for area in ("dali/eryuan", "dali", "dali/dali-city/wanqiao", "dali/nowhere"):
        assert viewer.get("/api/v1/overview", params={"area": area}).status_code == 404
    # The root scope of a township viewer is still only their township.
    assert viewer.get("/api/v1/overview", params={"area": ""}).json()["total"] == 8
    other = site_id(p, 17)
    missing = viewer.get("/api/v1/sites/no-such-site")
    for path in ("", "/timeline", "/history"):
        r = viewer.get(f"/api/v1/sites/{other}{path}")
        assert r.status_code == 404 and r.json() == missing.json()
    page = viewer.get(f"/sites/{other}", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert viewer.get("/api/v1/overview/stream", params={"site": other}).status_code == 404
    assert viewer.get(f"/api/v1/sites/{site_id(p, 3)}").status_code == 200
    # The county manager sees the 8 Eryuan sites and nothing of Dali city.
    manager = console["login"]("eryuan.mgr")
    rows = all_pages(manager)
    assert {r["site_id"] for r in rows} == {site_id(p, i) for i in range(17, 25)}
    assert manager.get(f"/api/v1/sites/{site_id(p, 3)}").status_code == 404
    # Without a session: 401 for the API, a redirect for a browser.
    anon = httpx.get(console["url"] + "/api/v1/overview")
    assert anon.status_code == 401
    assert (
        httpx.get(console["url"] + f"/sites/{other}", headers={"Accept": "text/html"}).status_code
        == 303
    )


def test_site_day_curve_history_and_who_is_present(console):
    p = console["prefix"]
    service = console["service"]
    s4 = site_id(p, 4)
    viewer = console["login"]("xizhou.view")
    # Yesterday at s04: 3 people checked in, 2 meals and a repeat. Today: the fixture's 4 check-ins
    # and 1 meal, plus one check-out now.
    _, today_start, _ = day_window(ZoneInfo(TZ), today_base_us())
    yesterday = today_start - int(timedelta(hours=14).total_seconds() * 1e6)  # 10:00 yesterday
    gate = EventMaker(f"{s4}-gate", base_us=yesterday, seq=1000)
    canteen = EventMaker(f"{s4}-canteen", base_us=yesterday, seq=1000)
    old = [gate.make(Kind.CHECK_IN, f"P04{k}") for k in range(3)]
    old += [
        canteen.make(Kind.MEAL, "P040", MealPeriod.LUNCH),
        canteen.make(Kind.MEAL, "P041", MealPeriod.LUNCH),
    ]
    old.append(canteen.make(Kind.MEAL_REPEAT, "P040", MealPeriod.LUNCH))
    now_gate = EventMaker(f"{s4}-gate", seq=2000)
    console["publisher"].publish([*old, now_gate.make(Kind.CHECK_OUT, "P040")])
    wait_for(lambda: service.metrics.acked == console["events"] + len(old) + 1)

    site = wait_for(lambda: (r := viewer.get(f"/api/v1/sites/{s4}").json())["present"] == 3 and r)
    assert site["arrivals"] == 4 and site["meals"]["lunch"] == 1
    names = {p_["person_id"]: p_["display_name"] for p_ in site["present_people"]}
    assert names == {"P041": "长者4-1", "P042": "长者4-2", "P043": "长者4-3"}

    tl = viewer.get(f"/api/v1/sites/{s4}/timeline").json()
    assert len(tl["t"]) == 144 and tl["bucket_s"] == 600
    assert sum(tl["arrivals"]) == 4 and sum(tl["meals"]) == 1 and tl["arrivals_total"] == 4
    latest = [v for v in tl["present"] if v is not None]
    # 4 in, 1 out (end of the current bucket); no values after now, so the curve stops there.
    assert latest[-1] == 3
    assert tl["present"].index(None) == len(latest) if None in tl["present"] else True
    day_before = (date.fromisoformat(tl["date"]) - timedelta(days=1)).isoformat()
    old_tl = viewer.get(f"/api/v1/sites/{s4}/timeline", params={"day": day_before}).json()
    assert sum(old_tl["arrivals"]) == 3 and old_tl["meals_by_period"]["lunch"] == 2
    assert old_tl["meal_repeats"] == 1 and old_tl["repeats"][0]["person_id"] == "P040"
    assert viewer.get(f"/api/v1/sites/{s4}/timeline", params={"day": "May 1"}).status_code == 422

    hist = viewer.get(f"/api/v1/sites/{s4}/history", params={"days": 7}).json()
    assert len(hist["days"]) == 7 and hist["days"][-1] == tl["date"]
    assert hist["days"][-2] == day_before
    assert (hist["arrivals"][-2:], hist["meals"][-2:], hist["meal_repeats"][-2:]) == (
        [3, 4],
        [2, 1],
        [1, 0],
    )
    assert sum(hist["arrivals"][:-2]) == 0
    assert viewer.get(f"/api/v1/sites/{s4}/history", params={"days": 400}).status_code == 422
    page = viewer.get(f"/sites/{s4}")
    assert page.status_code == 200 and "第4幸福小院" in page.text
    assert "/static/vendor/uPlot.iife.min.js" in page.text


def test_overview_stream_sends_only_changed_sites(console):
    p = console["prefix"]
    admin = console["login"]("root.admin")
    got: list[tuple[str, dict[str, Any], float]] = []
    ready = threading.Event()

    def listen() -> None:
        with admin.stream("GET", "/api/v1/overview/stream", params={"area": ""}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    got.append((name, json.loads(line[6:]), time.monotonic()))
                    if name == "hello":
                        ready.set()
                    if name == "rollup":
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(5)
    s5 = site_id(p, 5)
    sent = time.monotonic()
    console["publisher"].publish([EventMaker(f"{s5}-gate", seq=3000).make(Kind.CHECK_IN, "P054")])
    thread.join(5)
    assert not thread.is_alive()
    sites = [g for g in got if g[0] == "sites"]
    assert len(sites) == 1
    rows = sites[0][1]["sites"]
    assert [r["site_id"] for r in rows] == [s5] and rows[0]["present"] == expected_day(5)[0] + 1
    rollup = next(g[1] for g in got if g[0] == "rollup")
    assert rollup["scope"]["present"] == sum(expected_day(i)[0] for i in range(1, 25)) + 1
    print(f"overview delta stream: tap -> sites event {1000 * (sites[0][2] - sent):.0f} ms")
    assert sites[0][2] - sent < 1.0
