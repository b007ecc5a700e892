"""Live state alone, with a clock the test controls: day boundaries in the site's time zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
