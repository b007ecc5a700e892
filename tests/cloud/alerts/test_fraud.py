"""Anti-fraud rules on the ingest hook: each fires exactly when it should, and never silently
changes anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Alert, Kind
from cloud_ingest.pipeline.live import LiveEvent
from tests.support.alerts import MIN, US, UsClock, ev, local_us, make_engine
from tests.support.ingest import write_registry
from warmcard.contract import Kind as Tap
from warmcard.contract import MealPeriod

NOON = local_us(2024, 5, 6, 12)


Setup = tuple[AlertEngine, dict[str, str]]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[AlertEngine, dict[str, str]]]:
    ids = write_registry(tmp_path, "fx")
    engine, _, registry = make_engine(
        tmp_path, ids, UsClock(NOON), two_sites_minutes=30, hours_grace_minutes=15,
        burst_taps=20, burst_seconds=30,
    )  # fmt: skip
    yield engine, ids
    engine.store.close()
    registry.close()


def feed(engine: AlertEngine, site: str, events: list[LiveEvent]) -> None:
    engine.on_stored([(site, e) for e in events])


def found(engine: AlertEngine, kind: Kind | None = None) -> list[Alert]:
    return engine.store.find([""], kinds=[kind] if kind else [])


def test_same_card_at_two_sites_within_the_window(setup: Setup) -> None:
    engine, ids = setup
    feed(engine, ids["site_a"], [ev(ids["gate_a"], 1, NOON, Tap.CHECK_IN, "P0001")])
    feed(engine, ids["site_b"], [ev(ids["gate_b"], 1, NOON + 31 * MIN, Tap.CHECK_IN, "P0001")])
    assert found(engine) == []  # 31 min apart: could have travelled
    feed(engine, ids["site_a"], [ev(ids["gate_a"], 2, NOON + 50 * MIN, Tap.CHECK_IN, "P0002")])
    feed(engine, ids["site_b"], [ev(ids["gate_b"], 2, NOON + 70 * MIN, Tap.CHECK_IN, "P0002")])
    [alert] = found(engine)
    assert alert.kind is Kind.TWO_SITES and alert.subject == "P0002"
    assert ids["site_a"] in alert.detail_zh and "two sites" in alert.detail_en
    # The same site twice, or an auto check-out, is not two sites.
    feed(engine, ids["site_a"], [ev(ids["gate_a"], 3, NOON + 71 * MIN, Tap.CHECK_IN, "P0003")])
    feed(engine, ids["site_a"], [ev(ids["canteen_a"], 1, NOON + 72 * MIN, Tap.MEAL, "P0003",
                                    MealPeriod.LUNCH)])  # fmt: skip
    feed(engine, ids["site_b"], [ev(ids["gate_b"], 3, NOON + 73 * MIN, Tap.CHECK_OUT, "P0003")])
    assert [a.subject for a in found(engine)] == ["P0002"]


def test_late_backlog_is_judged_by_event_time(setup: Setup) -> None:
    engine, ids = setup
    feed(engine, ids["site_b"], [ev(ids["gate_b"], 5, NOON + 10 * MIN, Tap.CHECK_IN, "P0004")])
    # A kiosk that was offline delivers a tap from earlier, 10 minutes apart in event time.
    feed(engine, ids["site_a"], [ev(ids["gate_a"], 5, NOON, Tap.CHECK_IN, "P0004")])
    assert [a.subject for a in found(engine, Kind.TWO_SITES)] == ["P0004"]


def test_meal_repeat_events_raise_one_alert_per_person(setup: Setup) -> None:
    engine, ids = setup
    c = ids["canteen_a"]
    feed(engine, ids["site_a"], [ev(c, 1, NOON, Tap.MEAL, "P0001", MealPeriod.LUNCH)])
    assert found(engine) == []
    feed(engine, ids["site_a"], [ev(c, 2, NOON + MIN, Tap.MEAL_REPEAT, "P0001", MealPeriod.LUNCH)])
    feed(engine, ids["site_a"], [ev(c, 3, NOON + 2 * MIN, Tap.MEAL_REPEAT, "P0001",
                                    MealPeriod.LUNCH)])  # fmt: skip
    [alert] = found(engine)
    assert alert.kind is Kind.MEAL_REPEAT and alert.count == 2
    assert alert.last_seen_at == NOON + 2 * MIN and alert.opened_at == NOON + MIN


def test_meals_at_two_canteens_in_one_period(setup: Setup) -> None:
    engine, ids = setup
    a, b = ids["site_a"], ids["site_b"]
    other = f"{ids['site_b']}-canteen"  # a second canteen kiosk
    feed(engine, a, [ev(ids["canteen_a"], 1, NOON, Tap.MEAL, "P0005", MealPeriod.LUNCH)])
    # Redelivered (same device and seq), another period, another day: not a second meal.
    feed(engine, a, [ev(ids["canteen_a"], 1, NOON, Tap.MEAL, "P0005", MealPeriod.LUNCH)])
    feed(engine, b, [ev(other, 1, NOON + 5 * 3600 * US, Tap.MEAL, "P0005", MealPeriod.DINNER)])
    feed(engine, b, [ev(other, 2, NOON + 24 * 3600 * US, Tap.MEAL, "P0005", MealPeriod.LUNCH)])
    assert found(engine, Kind.MEAL_TWO_CANTEENS) == []
    feed(engine, b, [ev(other, 3, NOON + 40 * MIN, Tap.MEAL, "P0005", MealPeriod.LUNCH)])
    [alert] = found(engine, Kind.MEAL_TWO_CANTEENS)
    assert alert.subject == "P0005" and "2024-05-06" in alert.detail_zh


def test_taps_outside_opening_hours(setup: Setup) -> None:
    engine, ids = setup
    a, gate, canteen = ids["site_a"], ids["gate_a"], ids["canteen_a"]  # opens 07:00-18:00
    ok = [
        ev(gate, 1, local_us(2024, 5, 6, 6, 46), Tap.CHECK_IN, "P0001"),  # inside the grace
        ev(gate, 2, local_us(2024, 5, 6, 18, 0), Tap.CHECK_OUT, "P0001"),  # auto check-out
        ev(canteen, 1, local_us(2024, 5, 6, 18, 40), Tap.MEAL, "P0002", MealPeriod.DINNER),
    ]
    feed(engine, a, ok)
    assert found(engine) == []
    feed(engine, a, [ev(gate, 3, local_us(2024, 5, 6, 18, 40), Tap.CHECK_IN, "P0003")])
    [alert] = found(engine)
    assert alert.kind is Kind.OUTSIDE_HOURS and alert.subject == a
    feed(engine, a, [ev(gate, 4, local_us(2024, 5, 7, 5, 30), Tap.UNKNOWN_CARD, None)])
    [alert] = found(engine)
    assert alert.count == 2 and "unknown_card" in alert.detail_en


def test_burst_of_taps_at_one_kiosk(setup: Setup) -> None:
    engine, ids = setup
    a, gate, canteen = ids["site_a"], ids["gate_a"], ids["canteen_a"]
    for device in (gate, canteen):  # 20 taps in 20 s: a busy door, not a burst
        feed(engine, a, [ev(device, i, NOON + i * US, Tap.CHECK_IN, f"P{i:04d}")
                         for i in range(1, 21)])  # fmt: skip
    assert found(engine) == []
    # At the gate the 21st tap comes when the first two have left the 30 s window: 19.
    feed(engine, a, [ev(gate, 21, NOON + 32 * US, Tap.CHECK_IN, "P0021")])
    assert found(engine) == []
    # At the canteen it comes within the window: 21 taps in 30 s.
    feed(engine, a, [ev(canteen, 21, NOON + 30 * US, Tap.CHECK_IN, "P0021")])
    [alert] = found(engine)
    assert alert.kind is Kind.TAP_BURST and alert.subject == canteen and alert.count == 1
    assert "21" in alert.detail_zh


def test_redelivered_batch_is_not_judged_twice(setup: Setup) -> None:
    engine, ids = setup
    batch = [ev(ids["canteen_a"], 7, NOON, Tap.MEAL_REPEAT, "P0009", MealPeriod.LUNCH)]
    feed(engine, ids["site_a"], batch)
    feed(engine, ids["site_a"], batch)
    [alert] = found(engine)
    assert alert.count == 1


def test_hook_never_raises_into_ingest(setup: Setup) -> None:
    engine, ids = setup
    with engine.store.db.write() as conn:  # the alerts table is gone
        conn.execute(text("ALTER TABLE alerts RENAME TO alerts_away"))
    engine.on_stored([(ids["site_a"], ev(ids["canteen_a"], 1, NOON, Tap.MEAL_REPEAT, "P0001",
                                         MealPeriod.LUNCH))])  # fmt: skip
    assert engine.hook_errors == 1
    with engine.store.db.write() as conn:
        conn.execute(text("ALTER TABLE alerts_away RENAME TO alerts"))
