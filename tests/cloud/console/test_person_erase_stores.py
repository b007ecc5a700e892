"""An erasure on each backend: the registry (contacts too), alerts, dead letters, hand-recorded
meals and kiosk commands of the person, read back through the stores, and the bytes of the
stores' files (the SQLite files; PostgreSQL's table and index files) no longer hold the name,
the id, the card, the phone or the address (the console store: not the name a hand meal's reason
gave; its kiosk commands hold the id)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from cloud_ingest.alerts.models import Finding, Kind, LastSeen
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.erasure import ALERT_TABLES, REGISTRY_TABLES, erase_person
from cloud_ingest.console.kiosk_erasure import KioskErasures
from cloud_ingest.db import Database, is_url
from cloud_ingest.pipeline.deadletter import DeadLetter, DeadLetterStore
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry.contacts import contacts_of, set_contact
from cloud_ingest.registry.store import Registry
from tests.support.databases import StoreAt, stored_bytes
from tests.support.ingest import write_registry
from warmcard.rejections import Reason

AT = 1_800_000_000_000_000
PERSON, NAME, CARD = "P0003", "长者3", "04A1B203"
PHONE, ADDRESS = "+86 138-0000-0003", "喜洲镇城北村 3 号"
TOPIC = "warmcard/v1/devices/k-x/events"


def _hand_meals(console: Database) -> None:
    """Two meals recorded by hand, the person's with their name in the reason."""
    with console.write() as conn:
        conn.execute(
            text(
                "INSERT INTO hand_meals (event_id, person_id, site_id, day, period, ts_us, reason,"
                " recorded_by, recorded_us) VALUES (:person, :person, 's', '2027-01-15', 'lunch',"
                " :at, :reason, 'li', :at)"
            ),
            [
                {"person": PERSON, "at": AT, "reason": f"{NAME}忘带卡"},
                {"person": "P0004", "at": AT, "reason": "卡坏了"},
            ],
        )


def _fill(alerts: AlertStore, letters: DeadLetterStore) -> None:
    alerts.raise_many(
        [
            (Finding(Kind.VISIT_DUE, PERSON, AT, "到期", "due", person_id=PERSON), "dali"),
            (Finding(Kind.TAP_MISMATCH, "k-x:card", AT, f"卡 {CARD} 不符", "card"), "dali"),
            (Finding(Kind.VISIT_DUE, "P0004", AT, "到期", "due", person_id="P0004"), "dali"),
        ]
    )
    alerts.set_flags([(PERSON, "lives_alone", True), ("P0004", "lives_alone", True)], AT)
    alerts.upsert_last_seen([LastSeen(p, AT, "s", "k-x", "check_in") for p in (PERSON, "P0004")])
    alerts.record_visit(PERSON, "dali", AT, "ann", f"{NAME}很好", None)
    letters.add_many(
        [
            DeadLetter(AT, TOPIC, f'{{"card_uid":"{CARD}"'.encode(), Reason.INVALID_JSON, ""),
            DeadLetter(AT, TOPIC, b"{", Reason.INVALID_JSON, f'person "{PERSON}" unknown'),
            DeadLetter(AT, TOPIC, b'{"card_uid":"04A1B204"', Reason.INVALID_JSON, ""),
        ]
    )


def test_erasure_leaves_nothing_in_the_stores(
    request: pytest.FixtureRequest, store_at: StoreAt, tmp_path: Path, influxd, influx_db: str
) -> None:
    write_registry(tmp_path, "er", store_at("registry"))
    registry = Registry(store_at("registry"))
    storage = InfluxV1(InfluxSettings(url=influxd.url, database=influx_db))
    alerts = AlertStore(store_at("alerts"))
    letters = DeadLetterStore(store_at("deadletters"))
    kiosks = KioskErasures(store_at("console"))
    postgres = request.getfixturevalue("postgres") if is_url(store_at("alerts")) else None
    try:
        _fill(alerts, letters)
        _hand_meals(kiosks.db)
        set_contact(registry, PERSON, PHONE, ADDRESS, "mgr", AT)
        set_contact(registry, "P0004", "0872 000 0004", "喜洲镇 4 号", "mgr", AT)
        markers = [m.encode() for m in (PERSON, NAME, CARD)]
        before = stored_bytes(alerts.db, list(ALERT_TABLES), postgres)
        assert all(m in before for m in markers)
        markers += [m.encode() for m in (PHONE, ADDRESS)]  # the registry's contact row
        assert all(m in stored_bytes(registry.db, list(REGISTRY_TABLES), postgres) for m in markers)
        done = erase_person(
            PERSON,
            registry=registry,
            storage=storage,
            alerts=alerts,
            deadletters=letters,
            kiosks=kiosks,
        )
        assert (done.alerts, done.flags, done.visits_kept, done.dead_letters) == (2, 1, 1, 2)
        assert [a.subject for a in alerts.find([""])] == ["P0004"]
        assert alerts.flags() == [("P0004", "lives_alone", AT)]
        assert set(alerts.last_seen()) == {"P0004"}
        (visit,) = alerts.visits_between("", 0, AT + 1)
        assert (visit.person_id, visit.note) == (done.token, "")
        assert [d.payload for d in letters.list(10)] == [b'{"card_uid":"04A1B204"']
        assert kiosks.pending() == done.kiosks == 3  # the registry's three kiosks
        assert done.hand_meals == 1
        with kiosks.db.read() as conn:
            meals = conn.execute(text("SELECT person_id, reason FROM hand_meals ORDER BY seq"))
            assert meals.all() == [(done.token, ""), ("P0004", "卡坏了")]
        assert NAME.encode() not in stored_bytes(kiosks.db, ["hand_meals"], postgres)
        assert registry.query(
            "SELECT count(*) FROM people WHERE person_id = :p", {"p": PERSON}
        ) == [(0,)]
        assert set(contacts_of(registry, [PERSON, "P0004"])) == {"P0004"}
        after = stored_bytes(alerts.db, list(ALERT_TABLES), postgres)
        after += stored_bytes(letters.db, ["dead_letters"], postgres)
        after += stored_bytes(registry.db, list(REGISTRY_TABLES), postgres)
        assert [m for m in markers if m in after] == []
        assert b"P0004" in after and b"04A1B204" in after  # the others' rows stay
    finally:
        for s in (registry, storage, alerts, letters, kiosks):
            s.close()
