# mypy: allow-untyped-defs
"""Issue #9.3: taps that do not match the registry's card history are kept, counted nowhere,
and raised as an alert naming what did not match. Real Mosquitto and InfluxDB."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import text

from cloud_ingest.alerts.models import Kind as AlertKind
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.registry.store import Registry
from tests.support.ingest import (
    EventMaker,
    Publisher,
    influx_counts,
    make_settings,
    running,
    wait_for,
    write_registry,
)
from tests.support.stack import Stack
from warmcard.contract import Kind, MealPeriod

DAY_US = 86400 * 1_000_000
CARD_P1 = "04A1B201"


@pytest.fixture
def publisher(mosquitto):
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


def suspects(settings) -> list[dict[str, object]]:
    storage = InfluxV1(settings.influx)
    try:
        series = storage.query('SELECT "seq", "person_id", "card_uid" FROM "suspect_taps"')
    finally:
        storage.close()
    return [dict(zip(s.columns, row, strict=True)) for s in series for row in s.values]


def mismatch_alerts(service: Stack) -> dict[str, str]:
    found = service.alerts.store.find([""], kinds=[AlertKind.TAP_MISMATCH])
    return {a.subject: a.detail_en for a in found}


def test_forged_taps_are_kept_apart_uncounted_and_alerted(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix, publisher
):
    """Before: a meal for a person not in the registry and a meal for P2 with P1's card were
    both stored as taps (counted), with no alert."""
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    canteen = EventMaker(ids["canteen_a"])
    events = [
        canteen.make(Kind.MEAL, "P0001", MealPeriod.LUNCH),  # P1's own card: counted
        canteen.make(Kind.MEAL, "P9999", MealPeriod.LUNCH, card_uid=CARD_P1),  # nobody
        canteen.make(Kind.MEAL, "P0002", MealPeriod.LUNCH, card_uid=CARD_P1),  # P1's card
        canteen.make(Kind.MEAL, "P0007", MealPeriod.LUNCH),  # site B's person at site A
    ]
    with running(settings) as service:
        publisher.publish(events)
        wait_for(lambda: service.metrics.acked == 4)
        # Kept: nothing is lost ...
        kept = sorted((r["seq"], r["person_id"]) for r in suspects(settings))
        assert kept == [(2, "P9999"), (3, "P0002"), (4, "P0007")]
        # ... counted nowhere: InfluxDB counts, live meals, the dead-letter store.
        assert influx_counts(settings) == Counter({(ids["site_a"], "meal"): 1})
        site_a = next(s for s in service.live.snapshot()["sites"] if s["site_id"] == ids["site_a"])
        assert site_a["meals"]["lunch"] == 1
        assert service.deadletters.counts() == {}
        assert service.metrics.suspects == Counter(
            {"person_unknown": 1, "card_person": 1, "site": 1}
        )
        # ... and raised, naming what did not match.
        alerts = wait_for(
            lambda: mismatch_alerts(service) if len(mismatch_alerts(service)) == 3 else None
        )
        device = ids["canteen_a"]
        assert "person P9999 is not in the registry" in alerts[f"{device}:person_unknown"]
        assert f"card {CARD_P1} was not P0002's" in alerts[f"{device}:card_person"]
        assert "registry holder: P0001" in alerts[f"{device}:card_person"]
        assert f"P0007 belongs to {ids['site_b']}" in alerts[f"{device}:site"]


def test_a_reassigned_card_is_right_for_the_taps_of_its_time(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix, publisher
):
    """P1's card went to P3 yesterday: P1's taps from before count, P3's from today count;
    P1's tap today is a suspect once past the roster lag (0 here)."""
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix, roster_lag_s=0)
    gate = EventMaker(ids["gate_a"])
    moved_us = gate.base_us - DAY_US
    registry = Registry(settings.registry_path)
    with registry.change() as db:
        card = {"card": CARD_P1}
        db.execute(text("UPDATE cards SET person_id = 'P0003' WHERE card_uid = :card"), card)
        db.execute(text("DELETE FROM card_assignments WHERE card_uid = :card"), card)
        db.execute(
            text(
                "INSERT INTO card_assignments (card_uid, person_id, valid_from, valid_to) "
                "VALUES (:card, :person, :start, :end)"
            ),
            [
                {**card, "person": "P0001", "start": None, "end": moved_us},
                {**card, "person": "P0003", "start": moved_us, "end": None},
            ],
        )
    registry.close()
    old = EventMaker(ids["gate_a"], base_us=moved_us - 3600 * 1_000_000)
    events = [old.make(Kind.CHECK_IN, "P0001", card_uid=CARD_P1)]  # before the move: P1's
    gate.seq = old.seq
    events += [
        gate.make(Kind.CHECK_IN, "P0003", card_uid=CARD_P1),  # after: P3's
        gate.make(Kind.CHECK_IN, "P0001", card_uid=CARD_P1),  # after, as P1: suspect
    ]
    with running(settings) as service:
        publisher.publish(events)
        wait_for(lambda: service.metrics.acked == 3)
        assert influx_counts(settings) == Counter({(ids["site_a"], "check_in"): 2})
        assert [(r["seq"], r["person_id"]) for r in suspects(settings)] == [(3, "P0001")]
