# mypy: allow-untyped-defs
"""Registry pages and JSON per area, card history, typed UIDs, migration, exports, /metrics."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest
from fastapi.testclient import TestClient

from cloud_ingest import migrations
from cloud_ingest.alerts.models import Finding
from cloud_ingest.alerts.models import Kind as AlertKind
from cloud_ingest.console.enrolment import card_uid_from_text
from cloud_ingest.errors import RegistryEditError
from cloud_ingest.registry import queries as rc
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from cloud_ingest.web.worker_app import create_health_app
from tests.support.console import (
    METRICS_TOKEN,
    client_as,
    close_unstarted,
    console_app,
    console_db_for,
)
from tests.support.ingest import make_settings, write_registry
from tests.support.stack import Stack
from warmcard.cards import from_uid


class FakeServer:
    port = 1
    url = "http://127.0.0.1:1"


@pytest.fixture
def env(tmp_path, topic_prefix):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(
        tmp_path, FakeServer(), FakeServer(), "unused", topic_prefix, metrics_token=METRICS_TOKEN
    )
    clock = iter(range(1_800_000_000_000_000, 1_900_000_000_000_000, 1_000_000))
    service = Stack(settings, clock=lambda: next(clock))  # not started: no broker
    app = console_app(service, console_db_for(tmp_path, ids))
    yield app, ids, service
    close_unstarted(service)


def test_lists_show_only_own_area_and_other_ids_are_404(env):
    app, ids, _ = env
    a = client_as(app, "view-a")
    people = a.get("/api/v1/registry/people", params={"per_page": 200}).json()
    assert people["total"] == 6
    assert {p["person_id"] for p in people["items"]} == {f"P{i:04d}" for i in range(1, 7)}
    assert {p["site_id"] for p in people["items"]} == {ids["site_a"]}
    cards = a.get("/api/v1/registry/cards").json()["items"]
    assert {c["person_id"] for c in cards} == {f"P{i:04d}" for i in range(1, 7)}
    devices = a.get("/api/v1/registry/devices").json()["items"]
    assert {d["device_id"] for d in devices} == {ids["gate_a"], ids["canteen_a"]}
    # Area B's ids answer exactly like ids that do not exist.
    missing = a.get("/api/v1/registry/people/P9999")
    for url in (
        "/api/v1/registry/people/P0007",
        "/registry/people/P0007",
        "/api/v1/registry/cards/04A1B207",
        f"/api/v1/registry/devices/{ids['gate_b']}",
        f"/api/v1/registry/devices/{ids['gate_b']}/enrol",
        f"/registry/devices/{ids['gate_b']}/enrol",
    ):
        r = a.get(url)
        assert r.status_code == 404, url
        assert r.json() == missing.json()
    # Filtering by the other area's site or searching its names finds nothing.
    assert a.get("/api/v1/registry/people", params={"site": ids["site_b"]}).json()["total"] == 0
    assert a.get("/api/v1/registry/people", params={"q": "长者7"}).json()["total"] == 0
    page = a.get("/registry/people", params={"q": "长者"})
    assert page.status_code == 200 and "长者1" in page.text and "长者7" not in page.text
    # The root administrator sees both areas.
    root = client_as(app, "root-admin")
    assert root.get("/api/v1/registry/people").json()["total"] == 10


def test_search_and_paging(env):
    app, _, _ = env
    a = client_as(app, "view-a")
    first = a.get("/api/v1/registry/people", params={"per_page": 4, "page": 1}).json()
    second = a.get("/api/v1/registry/people", params={"per_page": 4, "page": 2}).json()
    assert first["total"] == second["total"] == 6
    ids = [p["person_id"] for p in first["items"] + second["items"]]
    assert ids == [f"P{i:04d}" for i in range(1, 7)]
    found = a.get("/api/v1/registry/people", params={"q": "者3"}).json()["items"]
    assert [p["person_id"] for p in found] == ["P0003"]
    # LIKE wildcards are literal.
    assert a.get("/api/v1/registry/people", params={"q": "%"}).json()["total"] == 0
    card = a.get("/api/v1/registry/cards", params={"q": "04:a1:b2:03"}).json()["items"]
    assert [c["card_uid"] for c in card] == ["04A1B203"]


def test_roles_viewer_reads_manager_edits_other_area_404(env):
    app, ids, service = env
    viewer = client_as(app, "view-a")
    r = viewer.post(
        "/api/v1/registry/people", json={"display_name": "新人", "site_id": ids["site_a"]}
    )
    assert r.status_code == 403
    mgr_b = client_as(app, "mgr-b")
    r = mgr_b.post(
        "/api/v1/registry/people", json={"display_name": "新人", "site_id": ids["site_a"]}
    )
    assert r.status_code == 404
    r = mgr_b.patch("/api/v1/registry/people/P0001", json={"display_name": "改名"})
    assert r.status_code == 404
    mgr = client_as(app, "mgr-a")
    no_csrf = TestClient(app, follow_redirects=False, cookies=mgr.cookies)
    r = no_csrf.post(
        "/api/v1/registry/people", json={"display_name": "x", "site_id": ids["site_a"]}
    )
    assert r.status_code == 403  # CSRF token missing
    version = service.registry.stored_version()
    r = mgr.post(
        "/api/v1/registry/people", json={"display_name": "王奶奶", "site_id": ids["site_a"]}
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["person_id"]
    assert new_id.startswith("P") and len(new_id) == 13
    assert service.registry.stored_version() == version + 1
    r = mgr.patch(f"/api/v1/registry/people/{new_id}", json={"display_name": "王奶奶2"})
    assert r.json()["display_name"] == "王奶奶2"
    # Moving someone into a site the manager does not manage is refused and changes nothing.
    r = mgr.patch(f"/api/v1/registry/people/{new_id}", json={"site_id": ids["site_b"]})
    assert r.status_code == 404
    assert mgr.get(f"/api/v1/registry/people/{new_id}").json()["person"]["site_id"] == ids["site_a"]


def test_card_history_when_a_card_moves(env):
    app, ids, service = env
    mgr = client_as(app, "mgr-a")
    t0 = service.registry.clock()
    r = mgr.post("/api/v1/registry/cards", json={"card": "04:a1:b2:01", "person_id": "P0002"})
    assert r.status_code == 200, r.text
    assert r.json()["previous_person_id"] == "P0001"
    assert r.json()["card"] == {
        "card_uid": "04A1B201",
        "person_id": "P0002",
        "site_id": ids["site_a"],
        "active": True,
    }
    history = mgr.get("/api/v1/registry/cards/04A1B201").json()["history"]
    assert [(h["person_id"], h["valid_to"] is None) for h in history] == [
        ("P0002", True),
        ("P0001", False),
    ]
    assert history[0]["valid_from"] == history[1]["valid_to"]  # no gap, no overlap
    assert history[1]["valid_from"] is not None  # imported with history, not before it
    assert t0 > 0
    p1 = mgr.get("/api/v1/registry/people/P0001").json()
    assert p1["person"]["active_cards"] == 0 and p1["cards"] == []
    assert [h["card_uid"] for h in p1["history"]] == ["04A1B201"]
    roster = service.registry.roster(ids["site_a"])
    assert {(e.card_uid, e.person_id) for e in roster.entries} >= {("04A1B201", "P0002")}
    assert ("04A1B201", "P0001") not in {(e.card_uid, e.person_id) for e in roster.entries}
    # Deactivating closes the assignment and leaves the roster.
    assert mgr.post("/api/v1/registry/cards/04A1B201/deactivate").json()["active"] is False
    history = mgr.get("/api/v1/registry/cards/04A1B201").json()["history"]
    assert all(h["valid_to"] is not None for h in history)
    assert "04A1B201" not in {e.card_uid for e in service.registry.roster(ids["site_a"]).entries}
    # The person page shows the history.
    page = mgr.get("/registry/people/P0001")
    assert page.status_code == 200 and "04A1B201" in page.text


def test_card_held_in_another_area_cannot_be_taken(env):
    app, _, service = env
    mgr = client_as(app, "mgr-a")
    r = mgr.post("/api/v1/registry/cards", json={"card": "04A1B207", "person_id": "P0001"})
    assert r.status_code == 409
    assert "P0007" not in r.text
    cards = {
        e.card_uid: e.person_id
        for e in service.registry.roster(service.registry.sites()[1].site_id).entries
    }
    assert cards["04A1B207"] == "P0007"


@pytest.mark.parametrize(
    "typed",
    ["04A1B2C3", "04:a1:b2:c3", "04-A1-B2-C3", " 04 a1 b2 c3 ", "0x04a1b2c3", "3283263748"],
)
def test_typed_uid_formats(typed):
    assert card_uid_from_text(typed) == "04A1B2C3"


def test_typed_uid_decimal_is_the_wedge_readers_number_and_errors_are_clear():
    for uid in ("04A1B2C3", "DEADBEEF", "00000001"):
        assert card_uid_from_text(from_uid(uid, "le", "dec10")) == uid
        assert card_uid_from_text(from_uid(uid, "be", "dec10"), order="be") == uid
    assert card_uid_from_text("04:11:22:33:44:55:66") == "04112233445566"
    for bad in ("", "xyz", "04A1B2", "9999999999", "04A1B2C3D5"):
        with pytest.raises(RegistryEditError):
            card_uid_from_text(bad)


def test_enrol_by_typed_uid_through_page_form(env):
    app, _, service = env
    mgr = client_as(app, "mgr-a")
    csrf = mgr.headers.pop("X-CSRF-Token")  # a browser form carries it as a field
    r = mgr.post(
        "/registry/people/P0003/cards",
        data={"card": "3283263748", "order": "le", "csrf_token": csrf},
    )
    assert r.status_code == 303 and r.headers["location"] == "/registry/people/P0003"
    holder = {
        e.card_uid: e.person_id
        for e in service.registry.roster(service.registry.sites()[0].site_id).entries
    }
    assert holder["04A1B2C3"] == "P0003"
    bad = mgr.post("/registry/people/P0003/cards", data={"card": "zz", "csrf_token": csrf})
    assert bad.status_code == 400 and "卡号无效" in bad.text
    parsed = mgr.get("/api/v1/registry/uid", params={"text": "04-a1-b2-c3"}).json()
    assert parsed == {"card_uid": "04A1B2C3"}


def test_people_csv_neutralises_formula_names(env):
    app, ids, _ = env
    mgr = client_as(app, "mgr-a")
    r = mgr.post(
        "/api/v1/registry/people",
        json={"display_name": "=cmd|' /C calc'!A0", "site_id": ids["site_a"]},
    )
    assert r.status_code == 201
    export = mgr.get("/api/v1/registry/people.csv")
    assert export.status_code == 200 and export.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    names = [row[1] for row in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in names and not any(n.startswith("=") for n in names)
    assert len(rows) == 1 + 7  # six imported people of area A and the new one, none of B
    # HTML pages escape it too.
    page = mgr.get("/registry/people")
    assert "=cmd|&#39; /C calc&#39;!A0" in page.text


def test_people_csv_lists_every_row_with_site_names(env):
    app, ids, service = env
    for i in range(250):  # more than a page (MAX_PER_PAGE = 200) and than the test's batch
        rc.add_person(service.registry, f"新长者{i}", ids["site_a"])
    mgr = client_as(app, "mgr-a")
    assert len(mgr.get("/api/v1/registry/people", params={"per_page": 200}).json()["items"]) == 200
    export = mgr.get("/api/v1/registry/people.csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][2:5] == ["站点编号 Site ID", "站点 Site", "站点(英文) Site (English)"]
    body = rows[1:]
    assert len(body) == 6 + 250 and len({r[0] for r in body}) == 256
    assert {(r[2], r[3], r[4]) for r in body} == {
        (ids["site_a"], "喜洲幸福小院", "Xizhou courtyard")
    }
    assert [r[0] for r in body] == sorted(r[0] for r in body)
    # Batches continue after the last id: a batch of 7 gives the same rows, none twice.
    sites = [ids["site_a"]]
    small = [p.person_id for p in rc.iter_people_export(service.registry, sites, batch=7)]
    assert small == [r[0] for r in body]
    found = list(rc.iter_people_export(service.registry, sites, q="新长者24"))
    assert sorted(p.display_name for p in found) == ["新长者24"] + [
        f"新长者24{d}" for d in range(10)
    ]


def test_old_registry_is_migrated_with_history(tmp_path):
    """SQLite only: registries from the releases before this history were SQLite files."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE sites (site_id TEXT PRIMARY KEY, name_zh TEXT NOT NULL,
            name_en TEXT NOT NULL DEFAULT '', tz TEXT NOT NULL DEFAULT 'Asia/Shanghai',
            capacity INTEGER, opening TEXT NOT NULL DEFAULT '07:00',
            closing TEXT NOT NULL DEFAULT '18:00', breakfast TEXT, lunch TEXT, dinner TEXT);
        CREATE TABLE devices (device_id TEXT PRIMARY KEY, site_id TEXT NOT NULL,
            mode TEXT NOT NULL, debounce_s REAL NOT NULL DEFAULT 10);
        CREATE TABLE people (person_id TEXT PRIMARY KEY, display_name TEXT NOT NULL,
            site_id TEXT NOT NULL);
        CREATE TABLE cards (card_uid TEXT PRIMARY KEY, person_id TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('version', 3);
        INSERT INTO sites (site_id, name_zh) VALUES ('s-01', '小院');
        INSERT INTO people VALUES ('P1', '甲', 's-01'), ('P2', '乙', 's-01');
        INSERT INTO cards VALUES ('04A1B2C3', 'P1', 1), ('04A1B2C4', 'P2', 0);
        """
    )
    db.commit()
    db.close()
    reg = Registry(path, clock=lambda: 5_000_000)
    try:
        assert migrations.current(reg.db) == "registry_0003"  # history, staff roles, contacts
        assert reg.query("SELECT DISTINCT role FROM people") == [("elder",)]
        rows = reg.query("SELECT card_uid, person_id, valid_from, valid_to FROM card_assignments")
        assert rows == [("04A1B2C3", "P1", None, None)]
        assert [e.card_uid for e in reg.roster("s-01").entries] == ["04A1B2C3"]
        assert reg.stored_version() == 3
    finally:
        reg.close()
    # Opening again does not migrate twice.
    reg = Registry(path)
    try:
        assert reg.query("SELECT count(*) FROM card_assignments")[0][0] == 1
    finally:
        reg.close()


def test_import_reports_progress_and_records_history(tmp_path, topic_prefix, store_at):
    write_registry(tmp_path, topic_prefix, store_at("registry"))
    (tmp_path / "move.csv").write_text("card_uid,person_id,active\n04A1B201,P0002,1\n")
    reg = Registry(store_at("registry"), clock=lambda: 7_000_000)
    seen: list[tuple[int, int]] = []
    try:
        import_csv(reg, cards=tmp_path / "move.csv", progress=lambda d, t: seen.append((d, t)))
        assert seen[-1] == (2, 2) and seen[0][1] == 2
        rows = reg.query(
            "SELECT person_id, valid_to FROM card_assignments WHERE card_uid = '04A1B201' "
            "ORDER BY id"
        )
        assert rows == [("P0001", 7_000_000), ("P0002", None)]
    finally:
        reg.close()


def test_metrics_need_the_token_and_healthz_hides_details(env):
    app, _, service = env
    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    gate = service.registry.devices()[0]
    service.alerts.store.raise_alert(
        Finding(AlertKind.READER_FAULT, gate.device_id, 1, "读卡器故障", "reader fault",
                site_id=gate.site_id, device_id=gate.device_id),
        "dali",
    )  # fmt: skip
    r = client.get("/metrics", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "warmcard_live_sites 2.0" in r.text
    assert "warmcard_console_link_connected 0.0" in r.text
    assert 'warmcard_alerts_open{kind="reader_fault"} 1.0' in r.text
    assert 'warmcard_alerts_open{kind="visit_due"} 0.0' in r.text
    assert 'warmcard_alerts_open{kind="gap_unhealed"} 0.0' in r.text
    assert 'warmcard_alerts_open{kind="seq_conflict"} 0.0' in r.text
    assert "warmcard_ingest_" not in r.text  # the workers' counters are on their own port
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json() == {"status": "degraded"}
    detail = client.get("/healthz", headers=auth).json()
    assert detail["role"] == "console" and detail["status_link_connected"] is False
    assert detail["heal_rounds"] == 0 and detail["heal_requests"] == 0
    assert detail["notify_sent"] == 0 and detail["notify_errors"] == 0


def test_worker_metrics_and_healthz_need_the_token(env):
    _, _, service = env
    client = TestClient(create_health_app(service.worker))  # no lifespan: not started
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert client.get("/metrics").status_code == 401
    service.worker_metrics.received = 12
    service.worker_metrics.dead_letters["schema"] += 2
    r = client.get("/metrics", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "warmcard_ingest_received_total 12.0" in r.text
    assert 'warmcard_ingest_dead_letters_total{reason="schema"} 2.0' in r.text
    assert "warmcard_ingest_consumer_pending 0.0" in r.text
    assert "warmcard_live_" not in r.text
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json() == {"status": "degraded"}
    detail = client.get("/healthz", headers=auth).json()
    assert detail["role"] == "ingest" and detail["metrics"]["received"] == 12
    assert "pending" in detail


def test_metrics_off_without_token_and_placeholder_refused(tmp_path, topic_prefix):
    from pydantic import SecretStr

    from cloud_ingest.settings import IngestSettings

    with pytest.raises(ValueError, match="placeholder"):
        IngestSettings(metrics_token=SecretStr("changeme"))
    with pytest.raises(ValueError, match="16 characters"):
        IngestSettings(metrics_token=SecretStr("short"))
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, FakeServer(), FakeServer(), "unused", topic_prefix)
    service = Stack(settings)
    try:
        app = console_app(service, console_db_for(tmp_path, ids))
        assert TestClient(app).get("/metrics").status_code == 404
    finally:
        close_unstarted(service)


def test_openapi_describes_registry_and_report_routes(env):
    app, _, _ = env
    doc = TestClient(app).get("/openapi.json").json()
    paths = doc["paths"]
    for path, method, model in (
        ("/api/v1/registry/people", "get", "PeoplePage"),
        ("/api/v1/registry/people/{person_id}", "get", "PersonDetail"),
        ("/api/v1/registry/cards", "post", "AssignResult"),
        ("/api/v1/registry/devices/{device_id}/enrol", "post", "EnrolOut"),
        ("/api/v1/reports/monthly", "get", "ReportOut"),
    ):
        schema = paths[path][method]["responses"]
        ok = schema.get("200") or schema.get("201")
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/" + model), path
    assert "/registry/people" not in paths  # pages stay out of the API document
    assert "/metrics" in paths and "/healthz" in paths
