"""Care from the console, behind the login: care flags and contacts on the person page (managers
of the person's area edit; contacts only for roles with the contacts right), and the closure
calendar pausing the days unseen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_ingest.console.roles import Role
from cloud_ingest.registry.contacts import contacts_of
from cloud_ingest.web.routes import alerts, care, registry
from tests.support.alerts import DAY, UsClock, alerts_console, local_us
from tests.support.stack import Stack

PW = "courtyard-care-77"
T0 = local_us(2024, 5, 6, 10)
PHONE, ADDRESS = "+86 138-0000-0001", "西山乡白塔村 1 号"

World = tuple[FastAPI, Stack, UsClock]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = UsClock(T0)
    users = {
        "xishan-mgr": (Role.MANAGER, "dali/eryuan/xishan"),
        "xishan-view": (Role.VIEWER, "dali/eryuan/xishan"),
        "xishan-fin": (Role.FINANCE, "dali/eryuan/xishan"),
        "xishan-staff": (Role.STAFF, "dali/eryuan/xishan"),
        "er-mgr": (Role.MANAGER, "dali/er"),
    }
    routers = [alerts.router, care.router, registry.router]
    app, service, _ = alerts_console(tmp_path, "ca", clock, users, routers, PW)
    engine = service.alerts  # not started: no broker needed here
    engine.store.set_flags([("P0001", "lives_alone", True)], T0)
    clock.t = T0 + 3 * DAY  # P0001 (site A, Xishan) unseen three days: due (threshold 2)
    engine.tick()
    yield app, service, clock
    engine.store.close()
    service.registry.close()


def login(app: FastAPI, username: str) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    r = client.post("/login", data={"username": username, "password": PW,
                                    "csrf_token": token.group(1)})  # fmt: skip
    assert r.status_code == 303, r.text
    client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
    return client, client.headers["X-CSRF-Token"]


def test_managers_set_and_clear_care_flags(world: World) -> None:
    app, service, clock = world
    mgr, _ = login(app, "xishan-mgr")
    r = mgr.post("/api/v1/people/P0002/flags", json={"flag": "child_in_difficulty"})
    assert r.status_code == 200 and r.json()["changed"] is True
    assert ("P0002", "child_in_difficulty", clock.t) in service.alerts.store.flags()
    page = mgr.get("/registry/people/P0002").text
    assert 'data-flag="child_in_difficulty" data-set="1"' in page and "困境儿童" in page
    assert 'data-flag="lives_alone" data-set="0"' in page
    r = mgr.post("/api/v1/people/P0002/flags", json={"flag": "orphan"})
    assert r.status_code == 400 and "unknown flag" in r.json()["detail"]
    r = mgr.post("/api/v1/people/P0002/flags", json={"flag": "child_in_difficulty", "active": "0"})
    assert r.json()["changed"] is True
    assert [p for p, _, _ in service.alerts.store.flags()] == ["P0001"]
    viewer, _ = login(app, "xishan-view")
    r = viewer.post("/api/v1/people/P0002/flags", json={"flag": "lives_alone"})
    assert r.status_code == 403
    assert "/api/v1/people/P0002/flags" not in viewer.get("/registry/people/P0002").text
    other, _ = login(app, "er-mgr")  # another county: answers as if P0002 did not exist
    assert other.post("/api/v1/people/P0002/flags", json={"flag": "lives_alone"}).status_code == 404
    assert [p for p, _, _ in service.alerts.store.flags()] == ["P0001"]


def test_contacts_are_checked_and_shown_only_with_the_contacts_right(world: World) -> None:
    app, service, _ = world
    mgr, csrf = login(app, "xishan-mgr")
    for phone, address, problem in [
        ("call me", "", "phone"),
        ("1234", "", "phone"),  # too short
        ("138 0000 0000 0000 0000", "", "phone"),  # 23 characters
        ("13800000001", "x" * 201, "longer than 200"),
        ("13800000001", "白塔村\x1b[31m", "control"),
    ]:
        r = mgr.post("/api/v1/people/P0001/contact", json={"phone": phone, "address": address})
        assert r.status_code == 400 and problem in r.json()["detail"], (phone, r.text)
    assert contacts_of(service.registry, ["P0001"]) == {}
    r = mgr.post("/api/v1/people/P0001/contact",
                 data={"phone": PHONE, "address": ADDRESS, "csrf_token": csrf})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/registry/people/P0001"
    assert contacts_of(service.registry, ["P0001"])["P0001"].updated_by == "xishan-mgr"
    viewer, _ = login(app, "xishan-view")
    dial = 'href="tel:+8613800000001"'  # what a phone dials: no spaces or dashes
    assert dial in viewer.get("/registry/people/P0001").text
    assert dial in viewer.get("/alerts/visits").text
    (due,) = viewer.get("/api/v1/visits/due").json()["due"]
    assert (due["phone"], due["address"]) == (PHONE, ADDRESS)
    # The roles without the contacts right (finance, staff): no phone, no address anywhere.
    for name in ("xishan-fin", "xishan-staff"):
        other, _ = login(app, name)
        for url in ("/registry/people/P0001", "/alerts/visits", "/api/v1/visits/due"):
            answer = other.get(url)
            assert answer.status_code == 200, (name, url)
            assert "138-0000-0001" not in answer.text and "白塔村" not in answer.text, url
    assert "138-0000-0001" in mgr.get("/alerts/visits").text
    # Kept out of the people list and its export.
    assert "138-0000" not in mgr.get("/api/v1/registry/people.csv").text
    # Both empty deletes them.
    mgr.post("/api/v1/people/P0001/contact", json={"phone": "", "address": ""})
    assert contacts_of(service.registry, ["P0001"]) == {}


def test_a_closure_pauses_the_days_unseen(world: World) -> None:
    app, service, clock = world
    clock.t = T0 + 4 * DAY  # 10 May, 10:00
    service.alerts.tick()
    viewer, _ = login(app, "xishan-view")
    assert "已 4 天未到院" in viewer.get("/alerts/visits").text
    mgr, csrf = login(app, "xishan-mgr")
    closure = {"area": "dali/eryuan/xishan", "start_day": "2024-05-08", "end_day": "2024-05-08",
               "reason": "维修 repairs"}  # fmt: skip
    assert viewer.post("/api/v1/closures", json=closure).status_code == 403
    other, _ = login(app, "er-mgr")
    assert other.post("/api/v1/closures", json=closure).status_code == 403
    bad = {**closure, "end_day": "2024-05-07"}  # before the start
    assert mgr.post("/api/v1/closures", json=bad).status_code == 400
    # Closed all of 8 May: one of the four days does not count; still due (threshold 2).
    made = mgr.post("/api/v1/closures", json=closure)
    assert made.status_code == 201, made.text
    (due,) = viewer.get("/api/v1/visits/due").json()["due"]
    assert (due["days"], due["closed_days"]) == (3, 1)
    assert "另有闭院 1 天不计" in viewer.get("/alerts/visits").text
    # Spring Festival in the whole township, 6–7 May: one day ten hours unseen, not due now.
    r = mgr.post("/api/v1/closures", data={"area": "dali/eryuan/xishan", "start_day": "2024-05-06",
                 "end_day": "2024-05-07", "reason": "春节", "csrf_token": csrf})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/alerts/closures"
    assert viewer.get("/api/v1/visits/due").json()["due"] == []
    page = viewer.get("/alerts/closures").text
    assert "春节" in page and "2024-05-08" in page and 'id="add-closure"' not in page
    listed = other.get("/api/v1/closures").json()["closures"]
    assert listed == []  # Erhai's manager sees none of Eryuan's closures
    mine = mgr.get("/api/v1/closures").json()["closures"]
    assert {c["reason"] for c in mine} == {"维修 repairs", "春节"}
    assert 'id="add-closure"' in mgr.get("/alerts/closures").text
    # Deleting the closures brings the count back.
    assert other.post(f"/api/v1/closures/{made.json()['id']}/delete").status_code == 404
    for c in mine:
        assert mgr.post(f"/api/v1/closures/{c['id']}/delete").status_code == 200
    clock.advance(1)
    service.alerts.tick()
    (due,) = viewer.get("/api/v1/visits/due").json()["due"]
    assert (due["days"], due["closed_days"]) == (4, 0)
