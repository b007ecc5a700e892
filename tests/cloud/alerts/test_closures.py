"""The closure calendar: closed days at a person's home site do not count as days unseen, on
each backend (the alerts and registry stores through `store_at`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from cloud_ingest.alerts import wellbeing
from cloud_ingest.alerts.closures import Closure, Closures, closed_spans, overlap_us
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.errors import AlertError
from cloud_ingest.registry.store import Registry
from tests.support.alerts import DAY, local_us
from tests.support.databases import StoreAt
from tests.support.ingest import write_registry

T0 = local_us(2024, 2, 8, 10)  # flagged on 8 February, 10:00 in Dali
NOW = T0 + 4 * DAY  # 12 February, 10:00: four days unseen
SETTINGS = AlertSettings(visit_due_days={"lives_alone": 2})

World = tuple[AlertStore, Registry, dict[str, str]]


@pytest.fixture
def world(store_at: StoreAt, tmp_path) -> Iterator[World]:
    ids = write_registry(tmp_path, "cl", store_at("registry"))
    registry = Registry(store_at("registry"))
    store = AlertStore(store_at("alerts"))
    paths = {
        ids["site_a"]: f"dali/eryuan/xishan/{ids['site_a']}",
        ids["site_b"]: f"dali/er/haidong/{ids['site_b']}",
    }
    store.set_flags([("P0001", "lives_alone", True), ("P0007", "lives_alone", True)], T0)
    yield store, registry, paths
    store.close()
    registry.close()


def dues(world: World) -> dict[str, wellbeing.Due]:
    store, registry, paths = world
    return {d.person_id: d for d in wellbeing.assess(SETTINGS, store, registry, paths, NOW)}


def due_now(world: World) -> set[str]:
    return {f.subject for f in wellbeing.evaluate(list(dues(world).values()), NOW, {})}


def test_three_closed_days_of_four_unseen_are_not_due(world: World) -> None:
    store, _, _ = world
    assert due_now(world) == {"P0001", "P0007"}  # four days unseen, threshold two
    closures = Closures(store)
    # Spring Festival in Eryuan county: 9–11 February (three whole local days).
    festival = closures.add(
        "dali/eryuan", date(2024, 2, 9), date(2024, 2, 11), "春节 Spring Festival", "mgr", T0
    )
    got = dues(world)
    assert got["P0001"].paused_us(NOW) == 3 * DAY
    assert got["P0001"].unseen_us(NOW) == 1 * DAY
    assert got["P0007"].paused_us(NOW) == 0  # site B is in another county: nothing changes
    assert due_now(world) == {"P0007"}
    # Read back on this backend, and gone once deleted.
    assert closures.get(festival.id) == festival
    assert [c.id for c in closures.seen_from(["dali/eryuan/xishan"])] == [festival.id]
    assert closures.seen_from(["dali/er"]) == []
    assert closures.delete(festival.id) and not closures.delete(festival.id)
    assert due_now(world) == {"P0001", "P0007"}


def test_open_ended_and_past_closures(world: World) -> None:
    store, _, _ = world
    closures = Closures(store)
    # Closed for repairs since 10 February, no end yet: 10 Feb 00:00 to now is 2 days 10 h.
    closures.add("dali/eryuan/xishan", date(2024, 2, 10), None, "维修 repairs", "mgr", T0)
    got = dues(world)["P0001"]
    assert got.paused_us(NOW) == 2 * DAY + 10 * 3600 * 10**6
    assert got.unseen_us(NOW) < 2 * DAY
    assert due_now(world) == {"P0007"}
    # A closure before the person was flagged pauses nothing.
    closures.add("dali", date(2024, 1, 1), date(2024, 1, 31), "一月 January", "mgr", T0)
    assert dues(world)["P0007"].paused_us(NOW) == 0


def test_overlapping_closures_count_once() -> None:
    days = [(date(2024, 2, 9), date(2024, 2, 11)), (date(2024, 2, 10), date(2024, 2, 12))]
    found = [Closure(i, "dali", start, end, "", "mgr", 0) for i, (start, end) in enumerate(days)]
    spans = closed_spans(found, "dali/eryuan/x", "Asia/Shanghai", NOW)
    assert len(spans) == 1
    assert overlap_us(spans, T0, NOW) == 3 * DAY + 10 * 3600 * 10**6  # 9 Feb 00:00 to now
    assert closed_spans(found, "yunnan/kunming", "Asia/Shanghai", NOW) == []


def test_bad_closures_are_refused(world: World) -> None:
    closures = Closures(world[0])
    with pytest.raises(AlertError, match="end date is before"):
        closures.add("dali", date(2024, 2, 9), date(2024, 2, 8), "", "mgr", T0)
    with pytest.raises(AlertError, match="control"):
        closures.add("dali", date(2024, 2, 9), None, "春节\x00", "mgr", T0)
    with pytest.raises(AlertError, match="at most"):
        closures.add("dali", date(2024, 1, 1), date(2025, 6, 1), "", "mgr", T0)
    assert closures.all() == []
