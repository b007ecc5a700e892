"""Live state alone, with a clock the test controls: day boundaries in the site's time zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cloud_ingest.pipeline.lineprotocol import HAND_DEVICE
from cloud_ingest.pipeline.live import LiveEvent, LiveState
from cloud_ingest.registry.store import Registry
from tests.support.ingest import write_registry
from warmcard.contract import Kind, MealPeriod

SHANGHAI = ZoneInfo("Asia/Shanghai")


def us(text: str) -> int:
    """Local Dali time as epoch microseconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()) * 1_000_000


def test_counts_follow_the_local_day_and_never_double(tmp_path: Path) -> None:
    ids = write_registry(tmp_path, "lv")
    registry = Registry(tmp_path / "registry.sqlite3")
    now = [us("2026-11-29T23:50:00")]
    live = LiveState(registry, None, clock=lambda: now[0])
    site, gate, canteen = ids["site_a"], ids["gate_a"], ids["canteen_a"]

    def ev(device: str, seq: int, at: str, kind: Kind, person: str | None) -> tuple[str, LiveEvent]:
        meal = MealPeriod.DINNER if kind in (Kind.MEAL, Kind.MEAL_REPEAT) else None
        return site, LiveEvent(device, seq, us(at), kind, meal, person)

    def numbers() -> tuple[int, int, int, int]:
        s = next(s for s in live.snapshot()["sites"] if s["site_id"] == site)
        return s["present"], s["arrivals"], s["meals_total"], s["meal_repeats"]

    try:
        # The clock says 23:50 in Dali; events of the 28th are yesterday's.
        batch = [
            ev(gate, 1, "2026-11-28T09:00:00", Kind.CHECK_IN, "P0005"),  # yesterday: ignored
            ev(gate, 2, "2026-11-29T08:00:00", Kind.CHECK_IN, "P0001"),
            ev(gate, 3, "2026-11-29T08:05:00", Kind.CHECK_IN, "P0002"),
            ev(gate, 4, "2026-11-29T17:00:00", Kind.CHECK_OUT, "P0002"),
            ev(canteen, 1, "2026-11-29T17:30:00", Kind.MEAL, "P0001"),
            ev(canteen, 2, "2026-11-29T17:31:00", Kind.MEAL_REPEAT, "P0001"),
        ]
        assert live.apply(batch) == 5
        assert numbers() == (1, 2, 1, 1)
        assert live.apply(batch) == 0  # redelivered: nothing changes
        assert numbers() == (1, 2, 1, 1)
        # An out-of-order check-out older than the check-in does not flip presence.
        live.apply([ev(gate, 5, "2026-11-29T07:00:00", Kind.CHECK_OUT, "P0001")])
        assert numbers() == (1, 2, 1, 1)
        # Local midnight (16:00 UTC) starts a new day with zeros.
        now[0] = us("2026-11-30T00:00:01")
        assert numbers() == (0, 0, 0, 0)
        assert live.apply([ev(gate, 6, "2026-11-29T23:59:00", Kind.CHECK_IN, "P0003")]) == 0
        assert live.apply([ev(gate, 7, "2026-11-30T00:00:00", Kind.CHECK_IN, "P0003")]) == 1
        assert numbers() == (1, 1, 0, 0)
    finally:
        registry.close()


def test_a_meal_by_hand_and_by_card_counts_once_whichever_came_first(tmp_path: Path) -> None:
    """补录 then the card's tap, or an offline kiosk's tap arriving after the 补录: one meal.
    Two kiosks' meals of one elder and period both count, as in the reports."""
    ids = write_registry(tmp_path, "lh")
    registry = Registry(tmp_path / "registry.sqlite3")
    live = LiveState(registry, None, clock=lambda: us("2026-11-30T13:00:00"))
    site, canteen, gate = ids["site_a"], ids["canteen_a"], ids["gate_a"]

    def meal(device: str, seq: int, person: str, period: MealPeriod) -> tuple[str, LiveEvent]:
        return site, LiveEvent(device, seq, us("2026-11-30T12:00:00") + seq, Kind.MEAL, period,
                               person)  # fmt: skip

    def meals() -> dict[str, int]:
        s = next(s for s in live.snapshot()["sites"] if s["site_id"] == site)
        return {p: s["meals"].get(p, 0) for p in ("breakfast", "lunch")}

    try:
        live.apply([meal(HAND_DEVICE, 1, "P0001", MealPeriod.LUNCH)])  # by hand first
        live.apply([meal(canteen, 1, "P0001", MealPeriod.LUNCH)])  # then the card
        assert meals() == {"breakfast": 0, "lunch": 1}
        live.apply([meal(canteen, 2, "P0002", MealPeriod.LUNCH)])  # the card first (offline)
        live.apply([meal(HAND_DEVICE, 2, "P0002", MealPeriod.LUNCH)])  # then by hand
        assert meals() == {"breakfast": 0, "lunch": 2}
        live.apply([meal(HAND_DEVICE, 3, "P0001", MealPeriod.BREAKFAST)])  # another period
        live.apply([meal(gate, 9, "P0001", MealPeriod.LUNCH)])  # a second kiosk's meal
        assert meals() == {"breakfast": 1, "lunch": 3}
    finally:
        registry.close()
