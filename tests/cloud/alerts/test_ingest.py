"""The alerts data path with real Mosquitto and InfluxDB: a published tap moves last_seen and
clears a visit-due alert; a retained status raises a reader fault; last_seen rebuilds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Kind, State
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.pipeline.influx import InfluxV1
from tests.support.alerts import DAY, write_areas
from tests.support.ingest import EventMaker, Publisher, make_settings, wait_for, write_registry
from tests.support.stack import Stack
from warmcard.contract import DeviceStatus, MealPeriod, ReaderState, status_topic
from warmcard.contract import Kind as Tap
from warmcard.timestamps import now_us

Running = tuple[Stack, dict[str, str], Publisher]


@pytest.fixture
def running(
    tmp_path: Path, mosquitto: Any, influxd: Any, influx_db: str, topic_prefix: str
) -> Iterator[tuple[Stack, dict[str, str], Publisher]]:
    ids = write_registry(tmp_path, topic_prefix)
    write_areas(tmp_path / "console.sqlite3", ids)
    settings = make_settings(
        tmp_path, mosquitto, influxd, influx_db, topic_prefix,
        console_db=tmp_path / "console.sqlite3",
        alerts=AlertSettings(evaluate_s=3600),  # the test ticks by hand
    )  # fmt: skip
    service = Stack(settings)
    # Flagged three days ago and never seen since: due at once.
    service.alerts.store.set_flags([("P0001", "lives_alone", True)], now_us() - 3 * DAY)
    service.start()
    publisher = Publisher(mosquitto.port)
    try:
        wait_for(service.consumer.subscribed.is_set)
        yield service, ids, publisher
    finally:
        publisher.close()
        service.stop()


def visit_due(store: AlertStore) -> list[Any]:
    return store.find([""], kinds=[Kind.VISIT_DUE])


def test_published_tap_updates_last_seen_and_clears_visit_due(running: Running) -> None:
    service, ids, publisher = running
    engine = service.alerts
    engine.tick()
    [alert] = visit_due(engine.store)
    assert alert.state is State.OPEN
    assert alert.area_path == f"dali/eryuan/xishan/{ids['site_a']}"
    gate = EventMaker(ids["gate_a"])
    tap = gate.make(Tap.CHECK_IN, "P0001")
    publisher.publish([tap])
    seen = wait_for(lambda: engine.store.last_seen(["P0001"]).get("P0001"))
    assert seen.ts_us == tap.ts_us and seen.site_id == ids["site_a"]
    assert seen.device_id == ids["gate_a"] and seen.kind == "check_in"
    engine.tick()
    [alert] = visit_due(engine.store)
    assert alert.state is State.CLOSED and alert.cleared_by == "auto"


def test_retained_reader_fault_raises_and_recovery_clears(running: Running) -> None:
    service, ids, publisher = running
    gate = ids["gate_b"]
    engine = service.alerts

    def status(reader: ReaderState) -> bytes:
        return DeviceStatus(device_id=gate, state="online", reader=reader).to_bytes()

    publisher.publish_raw(status_topic(gate), status(ReaderState.FAULT), retain=True)
    try:
        wait_for(lambda: gate in service.live.device_seen())
        engine.tick()
        [alert] = engine.store.find([""], kinds=[Kind.READER_FAULT])
        assert alert.subject == gate and alert.area_path.startswith("dali/er/haidong/")
        publisher.publish_raw(status_topic(gate), status(ReaderState.OK), retain=True)

        def recovered() -> bool:
            status = service.live.device_seen()[gate].status
            return status is not None and status.reader is ReaderState.OK

        wait_for(recovered)
        engine.tick()
        [alert] = engine.store.find([""], kinds=[Kind.READER_FAULT])
        assert alert.state is State.CLOSED and alert.cleared_by == "auto"
    finally:
        publisher.publish_raw(status_topic(gate), b"", retain=True)


def test_last_seen_rebuilds_from_influxdb(running: Running, tmp_path: Path) -> None:
    service, ids, publisher = running
    gate, canteen = EventMaker(ids["gate_b"]), EventMaker(ids["canteen_a"])
    events = [
        gate.make(Tap.CHECK_IN, "P0007"),
        canteen.make(Tap.MEAL, "P0002", MealPeriod.LUNCH),
        gate.make(Tap.CHECK_IN, "P0008"),
        gate.make(Tap.CHECK_OUT, "P0008", auto=True),  # not a sighting
        gate.make(Tap.CHECK_IN, "P0007"),
    ]
    publisher.publish(events)
    wait_for(lambda: service.metrics.stored >= len(events))
    fresh = AlertEngine(
        AlertSettings(db_path=tmp_path / "rebuilt.sqlite3"),
        service.registry,
        None,
        InfluxV1(service.settings.influx),
        console_db_path=None,
    )
    try:
        assert fresh.rebuild_last_seen() == 4
        seen = fresh.store.last_seen()
        assert {p: (s.ts_us, s.site_id, s.kind) for p, s in seen.items()} == {
            "P0007": (events[4].ts_us, ids["site_b"], "check_in"),
            "P0002": (events[1].ts_us, ids["site_a"], "meal"),
            "P0008": (events[2].ts_us, ids["site_b"], "check_in"),
        }
        service.alerts.flush_sightings()
        assert seen == service.alerts.store.last_seen()  # the hook kept the same
    finally:
        fresh.store.close()
        assert fresh.storage is not None
        fresh.storage.close()
