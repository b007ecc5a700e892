# mypy: allow-untyped-defs
"""Personal data (issue #9, items 9, 10 and 12), on the real console (uvicorn), Mosquitto,
InfluxDB, an ingest worker and a real kiosk:

- the access log carries no query string, name or card number;
- every request on personal data leaves an audit row (ids and counts, never a searched text);
  the chain verifies, a tampered row is named by `warmcard audit verify`; only prefecture
  admins read it (page, JSON, CSV);
- erasing a person leaves nothing of them in the registry, alerts, dead letters, InfluxDB or the
  kiosk's cached roster, while the counts stay as they were."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cloud_ingest.console.audit import AuditLog
from cloud_ingest.console.roles import Role
from cloud_ingest.web.audit_trail import RULES
from firmware_gateway.clock import SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from kiosk.cache import LocalCache
from kiosk.feedback import LogFeedback
from kiosk.runtime import Kiosk
from tests.kiosk.test_runtime import FAST
from tests.support.console import PASSWORD, LiveConsole, add_user, app_routes, live_console, login
from tests.support.ingest import wait_for
from warmcard.command.cli import app as warmcard
from warmcard.contract import events_topic
from warmcard.settings import MqttSettings

NAME, PERSON, CARD = "长者2", "P0002", "04A1B202"


@pytest.fixture(scope="module")
def running(tmp_path_factory, mosquitto, influxd) -> Iterator[LiveConsole]:
    database = "personal_data"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}"'})
    tmp = tmp_path_factory.mktemp("pd")
    with live_console(tmp, mosquitto, influxd, database, "pd") as live:
        add_user(live.service.settings.console_db, "dali-admin", Role.ADMIN, "dali")
        add_user(live.service.settings.console_db, "town-admin", Role.ADMIN, "dali/dalishi")
        yield live
    httpx.post(f"{influxd.url}/query", data={"q": f'DROP DATABASE "{database}"'})


@contextlib.contextmanager
def client(live: LiveConsole, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=15) as c:
        c.headers["X-CSRF-Token"] = login(c, user, PASSWORD)
        yield c


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_access_log_has_no_query_string_name_or_card_number(running) -> None:
    access = logging.getLogger("uvicorn.access")
    handler, level = Lines(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with client(running, "mgr-a") as a:
            for url in (
                f"/api/v1/registry/people?q={NAME}",
                f"/registry/people?q={NAME}",
                f"/api/v1/registry/cards/{CARD}",
                "/api/v1/registry/uid?text=04:a1:b2:02",
                f"/api/v1/registry/cards?q={CARD}",
            ):
                assert a.get(url).status_code == 200, url
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    requests = [line for line in handler.lines if "/registry/" in line]
    naming = [line for line in requests if NAME in line or "%E9%95%BF" in line.upper()]
    carded = [line for line in requests if CARD in line.upper() or "A1:B2" in line.upper()]
    queries = [line for line in requests if "?" in line]
    print(
        f"\naccess log lines: {len(requests)}; naming {len(naming)}, card {len(carded)}, "
        f"query strings {len(queries)}"
    )
    assert len(requests) == 5, handler.lines
    assert (naming, carded, queries) == ([], [], [])
    assert any("/api/v1/registry/cards/{card}" in line for line in requests)


def test_every_route_on_personal_data_is_audited(running) -> None:
    routes = app_routes(running.app)
    personal = {
        (m, p)
        for m, p in routes
        if any(k in p for k in ("{person_id}", "{card_uid}", "{capture_id}", ".csv", ".xlsx"))
        or p in ("/api/v1/registry/people", "/registry/people", "/sites/{site_id}")
    }
    assert personal - set(RULES) == set()
    assert set(RULES) - routes == set(), "rules for routes that do not exist"


def test_requests_on_personal_data_are_audited(running) -> None:
    with client(running, "mgr-a") as a:
        assert a.get("/api/v1/registry/people/P0001").status_code == 200
        assert a.get("/registry/people/P0003").status_code == 200
        found = a.get(f"/api/v1/registry/people?q={NAME[:2]}").json()["total"]
        assert a.get("/api/v1/registry/people.csv").status_code == 200
        assert (
            a.patch("/api/v1/registry/people/P0004", json={"display_name": "长者四"}).status_code
            == 200
        )
        assert (
            a.get("/api/v1/registry/people/P0007").status_code == 404
        )  # another area: recorded too
        made = a.post(
            "/api/v1/registry/people",
            json={"display_name": "新人", "site_id": running.ids["site_a"]},
        )
        assert made.status_code == 201
        for path in ("/audit", "/api/v1/audit", "/api/v1/audit.csv"):
            assert a.get(path).status_code == 403, path
    with client(running, "town-admin") as town:  # an admin, but of a city, not the prefecture
        assert town.get("/api/v1/audit").status_code == 403
    with client(running, "dali-admin") as admin:
        page = admin.get("/api/v1/audit", params={"user": "mgr-a", "per_page": 50}).json()
        # newest last, so each key holds the latest row
        rows = {(r["action"], r["object_kind"], r["object_id"]): r for r in page["items"][::-1]}
        assert ("view", "person", "P0001") in rows and ("view", "person", "P0003") in rows
        assert rows[("view", "person", "P0007")]["status"] == 404
        assert ("edit", "person", "P0004") in rows
        assert ("create", "person", made.json()["person_id"]) in rows
        search = rows[("search", "person", "")]
        assert json.loads(search["detail"]) == {"results": found, "text": True}
        assert ("export", "person", "") in rows
        assert all(r["client"] == "127.0.0.1" and r["username"] == "mgr-a" for r in page["items"])
        text = json.dumps(page, ensure_ascii=False)
        assert NAME[:2] not in text and "长者四" not in text and "新人" not in text
        html = admin.get("/audit", params={"user": "mgr-a"})
        assert html.status_code == 200 and "P0004" in html.text and "审计日志" in html.text
        csv = admin.get("/api/v1/audit.csv", params={"action": "edit"})
        assert csv.status_code == 200 and "P0004" in csv.text and "view" not in csv.text
        assert admin.get("/api/v1/audit", params={"start": "2026-13-01"}).status_code == 422


def test_the_chain_verifies_and_a_tampered_row_is_named(running, tmp_path) -> None:
    # SQLite-only: it tampers with a copy of the file (tests/cloud/console/test_audit.py: both).
    db = running.service.settings.console_db
    runner = CliRunner()
    ok = runner.invoke(warmcard, ["audit", "verify", "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    # Append-only for the console and the commands: the triggers refuse.
    conn = sqlite3.connect(db, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET username = 'nobody' WHERE seq = 2")
    # Someone with the file drops the trigger and rewrites a row: verify names it.
    copy = tmp_path / "copy.sqlite3"
    conn.execute(f"VACUUM INTO '{copy}'")
    conn.close()
    bad = sqlite3.connect(copy)
    bad.execute("DROP TRIGGER audit_log_no_update")
    bad.execute("UPDATE audit_log SET object_id = 'P0009' WHERE seq = 2")
    bad.commit()
    bad.close()
    broken = runner.invoke(warmcard, ["audit", "verify", "--db", str(copy)])
    assert broken.exit_code == 1
    assert "row 2: its content does not match its hash" in broken.output
    out = tmp_path / "audit.csv"
    exported = runner.invoke(warmcard, ["audit", "export", "--db", str(db), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert (
        out.read_text(encoding="utf-8-sig").count("\n") == AuditLog(db).verify().rows
    )  # header + rows - the export's own row


# ------------------------------------------------------------------ erasure


def _text_of_sqlite(path: Path, skip_tables: tuple[str, ...] = ()) -> str:
    """Every value of every row of every table, as text (blobs decoded)."""
    conn = sqlite3.connect(path)
    out: list[str] = []
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            if table in skip_tables:
                continue
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    out.append(str(value))
    finally:
        conn.close()
    return "\n".join(out)


def _pending_erasures(console_db: Path) -> list[str]:
    conn = sqlite3.connect(console_db)
    try:
        return [r[0] for r in conn.execute("SELECT device_id FROM kiosk_erasures")]
    finally:
        conn.close()


def _count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    finally:
        conn.close()


def _influx_text(live: LiveConsole) -> tuple[str, int]:
    series = live.service.console.query_storage.query('SELECT * FROM "taps", "suspect_taps"')
    rows = [r for s in series for r in s.rows()]
    return json.dumps(rows, ensure_ascii=False), len(rows)


def test_erasure_leaves_nothing_of_the_person(running, mosquitto, tmp_path) -> None:
    live, ids = running, running.ids
    settings = GatewaySettings(
        device_id=ids["gate_a"],
        data_dir=tmp_path / "kiosk",
        mqtt=MqttSettings(port=mosquitto.port),
        heartbeat_s=0.5,
    )
    reader = SimReader()
    kiosk = Kiosk(
        settings,
        reader,
        LogFeedback(),
        SystemClock(),
        rng=random.Random(2),
        timing=FAST,
        tick_s=0.1,
    )
    kiosk.start()
    try:
        assert kiosk.wait_ready(15)
        roster_file = kiosk.cache.roster_path

        def cached() -> str:
            """The roster cache as the kiosk reads it back from its SD card (sealed on disk)."""
            roster = LocalCache(roster_file.parent).roster
            return roster.model_dump_json() if roster is not None else ""

        assert NAME in cached() and NAME.encode() not in roster_file.read_bytes()
        for card in (CARD, "04A1B203"):  # P0002 and a neighbour check in through the pipeline
            reader.tap(card)
        wait_for(lambda: _influx_text(live)[1] >= 2)
        # A watcher's flag and visit, and a dead letter that names the card.
        live.service.console.alerts.store.set_flags([(PERSON, "lives_alone", True)], 0)
        with client(live, "mgr-a") as a:
            assert a.post(
                "/api/v1/visits", json={"person_id": PERSON, "note": f"{NAME}很好"}
            ).status_code in (200, 201, 204)
        live.publisher.publish_raw(events_topic(ids["gate_a"]), f'{{"card_uid":"{CARD}"'.encode())
        wait_for(lambda: CARD in _text_of_sqlite(live.service.settings.deadletter_path))
        before_text, before_points = _influx_text(live)
        assert PERSON in before_text and CARD in before_text
        stores = {
            "registry": live.service.settings.registry_path,
            "alerts": live.service.settings.alerts_db_file,
            "dead letters": live.service.settings.deadletter_path,
        }
        found = {
            k: sum(m in _text_of_sqlite(p) for m in (NAME, PERSON, CARD)) for k, p in stores.items()
        }
        print(f"\nbefore erasure, markers (name, id, card) per store: {found}")
        assert all(found.values())
        # A manager may not erase; an admin of the area may.
        with client(live, "mgr-a") as a:
            assert a.post(f"/api/v1/registry/people/{PERSON}/erase").status_code == 403
        with client(live, "dali-admin") as admin:
            erased = admin.post(f"/api/v1/registry/people/{PERSON}/erase")
            assert erased.status_code == 200, erased.text
            counts = erased.json()["counts"]
            assert (
                counts["points_taps"] == 1 and counts["flags"] == 1 and counts["dead_letters"] == 1
            )
            assert counts["visits_kept"] == 1
            assert admin.get(f"/api/v1/registry/people/{PERSON}").status_code == 404
            assert admin.post(f"/api/v1/registry/people/{PERSON}/erase").status_code == 404
        # The kiosk's cached roster is replaced without them, within seconds.
        wait_for(lambda: NAME not in cached(), timeout=15)
        now_cached = cached()
        assert PERSON not in now_cached and CARD not in now_cached and "长者3" in now_cached
        assert kiosk.cache.lookup(CARD) is None  # the kiosk no longer knows the card
        # Every kiosk gets an erase command; this one confirms it in its heartbeat, and the
        # console forgets it (the other kiosks of the registry are not running: theirs wait).
        console_db = live.service.settings.console_db
        wait_for(lambda: ids["gate_a"] not in _pending_erasures(console_db), timeout=15)
        assert kiosk.uplink.stats.erased_events == 1
        assert _pending_erasures(console_db), "kiosks that are offline get it when back"
        # The outbox on the SD card (its WAL checkpointed) names nobody erased any more.
        outbox = settings.outbox_path
        raw_outbox = b"".join(
            p.read_bytes() for p in (outbox, outbox.with_name(outbox.name + "-wal")) if p.exists()
        )
        assert [m for m in (NAME, PERSON, CARD) if m.encode() in raw_outbox] == []
        assert b"04A1B203" in raw_outbox  # the neighbour's tap is untouched
        # A forced resend of every seq stores nothing identifying, and raises no alert, dead
        # letter or conflict: the erased tap lands on the cloud's pseudonymised point.
        console = live.service.console
        letters = live.service.settings.deadletter_path
        stored, alerts_before = (
            console.stored_taps,
            _count(live.service.settings.alerts_db_file, "alerts"),
        )
        letters_before = _count(letters, "dead_letters")
        assert kiosk.outbox.resend(1, kiosk.outbox.last_seq()) == 2
        kiosk.uplink.wake()
        wait_for(lambda: console.stored_taps >= stored + 2, timeout=15)
        assert _count(letters, "dead_letters") == letters_before
        assert _count(live.service.settings.alerts_db_file, "alerts") == alerts_before
    finally:
        kiosk.stop()
    after = {
        k: [m for m in (NAME, PERSON, CARD) if m in _text_of_sqlite(p)] for k, p in stores.items()
    }
    raw = {
        k: [m for m in (NAME, PERSON, CARD) if m.encode() in p.read_bytes()]
        for k, p in stores.items()
    }
    after_text, after_points = _influx_text(live)
    print(f"after erasure, markers per store: {after}; in the raw files: {raw}")
    assert after == {k: [] for k in stores} and raw == {k: [] for k in stores}
    console_text = _text_of_sqlite(
        live.service.settings.console_db, skip_tables=("audit_log", "kiosk_erasures")
    )
    assert NAME not in console_text and CARD not in console_text
    # Erase commands still waiting for kiosks that are offline hold the id and card, never a name.
    assert NAME not in _text_of_sqlite(live.service.settings.console_db)
    audit = _text_of_sqlite(live.service.settings.console_db)
    # The audit log keeps who acted on which id (person id, card number), never a name: it is
    # the record of processing, kept and never rewritten (docs/security.md, "what is left").
    assert NAME not in audit
    kept = sqlite3.connect(live.service.settings.console_db)
    kinds = {r[0] for r in kept.execute(
        "SELECT object_kind FROM audit_log WHERE object_id IN (?, ?)", (PERSON, CARD)
    )}  # fmt: skip
    kept.close()
    assert kinds <= {"person", "card"}
    # InfluxDB: the points are all there (the counts stand), the person is not.
    assert PERSON not in after_text and CARD not in after_text
    assert after_points == before_points
    assert after_text.count("erased-") == 2  # person_id and card_uid of the one erased point
