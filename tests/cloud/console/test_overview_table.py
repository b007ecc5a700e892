"""The overview's shared table, kept current tap by tap: always what a full rebuild would give."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.console import db as console_db
from cloud_ingest.console.overview import Overview
from cloud_ingest.pipeline.live import LiveEvent, LiveState
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.placement import SitePlacement
from cloud_ingest.registry.store import Registry
from tests.support.console import place_sites
from warmcard.contract import Kind, MealPeriod
from warmcard.timestamps import now_us

SITES = ["s01", "s02", "s03", "s04"]  # s04 is placed nowhere: it counts at the root only


def test_tap_by_tap_the_table_equals_a_full_rebuild(tmp_path: Path) -> None:
    (tmp_path / "sites.csv").write_text(
        "site_id,name_zh,capacity\n" + "".join(f"{s},院{s},30\n" for s in SITES)
    )
    (tmp_path / "devices.csv").write_text(
        "device_id,site_id,mode\n"
        + "".join(f"{s}-gate,{s},entrance\n{s}-canteen,{s},canteen\n" for s in SITES)
    )
    registry = Registry(tmp_path / "registry.sqlite3")
    import_csv(registry, sites=tmp_path / "sites.csv", devices=tmp_path / "devices.csv")
    db = console_db.open_store(tmp_path / "console.sqlite3")
    place_sites(db, {"s01": "dali/eryuan/t1", "s02": "dali/eryuan/t1", "s03": "dali/binchuan/t2"})
    live = LiveState(registry, None)
    overview = Overview(live, SitePlacement(db, registry), clock=lambda: 0.0)
    first = overview.table()
    t = now_us() - 3_600_000_000
    taps = [
        ("s01", "gate", Kind.CHECK_IN, "P1"),
        ("s01", "gate", Kind.CHECK_IN, "P2"),
        ("s03", "canteen", Kind.MEAL, "P3"),
        ("s04", "gate", Kind.CHECK_IN, "P4"),
        ("s01", "gate", Kind.CHECK_OUT, "P1"),
        ("s02", "canteen", Kind.MEAL_REPEAT, "P5"),
        ("s04", "gate", Kind.CHECK_OUT, "P4"),
    ]
    for seq, (site, kiosk, kind, person) in enumerate(taps, 1):
        period = MealPeriod.LUNCH if kind in (Kind.MEAL, Kind.MEAL_REPEAT) else None
        live.apply([(site, LiveEvent(f"{site}-{kiosk}", seq, t + seq, kind, period, person))])
        table = overview.table()
        assert table.order is first.order  # patched: only the changed site was re-read
        rebuilt = overview._built(table.key, table.hierarchy)
        assert table.rows == rebuilt.rows
        assert table.totals == rebuilt.totals
    totals = overview.table().totals
    assert totals["dali/eryuan"]["arrivals"] == 2 and totals["dali/eryuan"]["present"] == 1
    assert totals[""]["arrivals"] == 3 and totals[""]["present"] == 1  # s04 at the root only
    assert totals["dali/binchuan/t2"]["meals_total"] == 1
    registry.close()
