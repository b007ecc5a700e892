"""Alerts API and pages behind the console login: per-area access, CSRF, ack/close, visits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.console.roles import Role
from cloud_ingest.web.routes import alerts
from tests.support.alerts import DAY, UsClock, alerts_console, local_us
from tests.support.stack import Stack

PW = "courtyard-alerts-77"
T0 = local_us(2024, 5, 6, 10)


World = tuple[FastAPI, Stack, dict[str, int], UsClock]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FastAPI, Stack, dict[str, int], UsClock]]:
    clock = UsClock(T0)
    users = {
        "eryuan-mgr": (Role.MANAGER, "dali/eryuan"),
        "eryuan-view": (Role.VIEWER, "dali/eryuan"),
        "er-mgr": (Role.MANAGER, "dali/er"),
    }
    app, service, ids = alerts_console(tmp_path, "ap", clock, users, [alerts.router], PW)
    engine = service.alerts  # not started: no broker needed here
    made = {
        "a_device": engine.store.raise_alert(
            Finding(Kind.READER_FAULT, ids["gate_a"], T0, "读卡器故障", "reader fault",
                    site_id=ids["site_a"], device_id=ids["gate_a"]),
            engine.area_of(ids["site_a"]),
        ),
        "b_fraud": engine.store.raise_alert(
            Finding(Kind.TWO_SITES, "P0007", T0, "两地 <b>x</b>", "two sites",
                    site_id=ids["site_b"], person_id="P0007"),
            engine.area_of(ids["site_b"]),
        ),
    }  # fmt: skip
    engine.store.set_flags([("P0001", "lives_alone", True), ("P0008", "lives_alone", True)], T0)
    clock.t = T0 + 3 * DAY
    engine.tick()
    yield app, service, made, clock
    engine.store.close()
    service.registry.close()


def login(app: FastAPI, username: str) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post("/login", data={"username": username, "password": PW,
                                    "csrf_token": token.group(1)})  # fmt: skip
    assert r.status_code == 303, r.text
    return client, client.get("/api/v1/me").json()["csrf_token"]


def test_user_sees_only_their_areas(world: World) -> None:
    app, _, made, _ = world
    a, _ = login(app, "eryuan-mgr")
    listed = a.get("/api/v1/alerts").json()["alerts"]
    assert {x["kind"] for x in listed} == {"reader_fault", "visit_due"}
    assert all(x["area_path"].startswith("dali/eryuan/") for x in listed)
    assert a.get(f"/api/v1/alerts/{made['b_fraud']}").status_code == 404
    assert a.get("/api/v1/alerts/999999").status_code == 404
    b, _ = login(app, "er-mgr")
    assert {x["kind"] for x in b.get("/api/v1/alerts").json()["alerts"]} == {
        "two_sites",
        "visit_due",
    }
    counts = a.get("/api/v1/alerts/counts").json()
    assert counts["open"] == 2 and counts["by_group"] == {"device": 1, "wellbeing": 1, "fraud": 0}
    assert (
        a.get("/api/v1/alerts", params={"kind": "visit_due"}).json()["alerts"][0]["person_id"]
        == "P0001"
    )
    assert a.get("/api/v1/alerts", params={"kind": "nope"}).status_code == 422
    assert TestClient(app).get("/api/v1/alerts").status_code == 401


def test_ack_and_close_need_manager_csrf_and_area(world: World) -> None:
    app, _, made, _ = world
    a, csrf = login(app, "eryuan-mgr")
    other = f"/api/v1/alerts/{made['b_fraud']}/ack"
    assert a.post(other, headers={"X-CSRF-Token": csrf}).status_code == 404  # area B's id
    mine = f"/api/v1/alerts/{made['a_device']}/ack"
    assert a.post(mine).status_code == 403  # no CSRF token
    viewer, vcsrf = login(app, "eryuan-view")
    assert viewer.post(mine, headers={"X-CSRF-Token": vcsrf}).status_code == 403
    r = a.post(mine, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["acked_by"] == "eryuan-mgr"
    r = a.post(f"/api/v1/alerts/{made['a_device']}/close", data={"csrf_token": csrf,
               "next": "/alerts?state=closed"})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/alerts?state=closed"
    closed = a.get(f"/api/v1/alerts/{made['a_device']}").json()
    assert closed["state"] == "closed" and closed["cleared_by"] == "user"
    b, bcsrf = login(app, "er-mgr")
    assert b.post(mine, headers={"X-CSRF-Token": bcsrf}).status_code == 404


def test_visits_due_and_record_visit(world: World) -> None:
    app, service, _, _ = world
    viewer, csrf = login(app, "eryuan-view")  # a watcher: may record visits, not ack alerts
    due = viewer.get("/api/v1/visits/due").json()["due"]
    assert [d["person_id"] for d in due] == ["P0001"] and due[0]["flags"] == ["lives_alone"]
    assert due[0]["can_record"] is True
    # Area B's person answers like an unknown one.
    r = viewer.post("/api/v1/visits", json={"person_id": "P0008"},
                    headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert r.status_code == 404
    r = viewer.post("/api/v1/visits", json={"person_id": "P0001", "note": "在家"})
    assert r.status_code == 403  # CSRF
    r = viewer.post("/api/v1/visits", json={"person_id": "P0001", "note": "在家，身体好"},
                    headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert r.status_code == 201, r.text
    assert viewer.get("/api/v1/visits/due").json()["due"] == []
    alert = viewer.get(f"/api/v1/alerts/{r.json()['closed_alert_id']}").json()
    assert alert["cleared_by"] == "user" and alert["closed_by"] == "eryuan-view"
    store = service.alerts.store
    [visit] = store.visits_in("dali/eryuan", "2024-05")
    assert visit.note == "在家，身体好" and visit.recorded_by == "eryuan-view"
    assert store.visits_in("dali/er", "2024-05") == []


def test_pages_are_bilingual_escaped_and_carry_csrf_forms(world: World) -> None:
    app, _, made, _ = world
    b, csrf = login(app, "er-mgr")
    page = b.get("/alerts")
    assert page.status_code == 200
    assert "<title>告警 · 温馨卡</title>" in page.text and "同卡两地" in page.text
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert f'action="/api/v1/alerts/{made["b_fraud"]}/ack"' in page.text
    assert f'value="{csrf}"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert 'href="/static/console.css"' in page.text  # the console's one stylesheet
    assert 'aria-current="page">告警' in page.text  # the nav marks the section
    english = b.get("/alerts?lang=en")
    assert "Same card at two sites" in english.text and "同卡两地" not in english.text
    assert "two sites" in english.text  # the alert's own English detail
    assert english.cookies.get("lang") == "en"
    visits = b.get("/alerts/visits?lang=zh-CN")  # back to Chinese (the cookie follows)
    assert "<h1>需探访</h1>" in visits.text and "P0008" in visits.text and "长者8" in visits.text
    assert "记录探访" in visits.text and "P0001" not in visits.text
    r = b.post("/api/v1/visits", data={"person_id": "P0008", "note": "ok", "csrf_token": csrf,
               "next": "/alerts/visits"})  # fmt: skip
    assert r.status_code == 303
    assert "暂无需探访人员" in b.get("/alerts/visits").text
    assert "Nobody is due a visit" in b.get("/alerts/visits?lang=en").text
    anon = TestClient(app, follow_redirects=False).get("/alerts")
    assert anon.status_code == 401
