"""The visit-due list holds every person due, not a first page: a prefecture administrator of
Dali sees all 945 of a day's (bench/dali_day.py found the list stopping at 500)."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.roles import Grant, Role, User
from cloud_ingest.console.visits_due import due_rows
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from warmcard.timestamps import now_us

DUE = 620  # past the alert list's default page of 500


def test_every_person_due_is_listed(tmp_path: Path) -> None:
    (tmp_path / "sites.csv").write_text("site_id,name_zh\ns01,喜洲小院\n", encoding="utf-8")
    registry = Registry(tmp_path / "registry.sqlite3")
    import_csv(registry, sites=tmp_path / "sites.csv")
    store = AlertStore(tmp_path / "alerts.sqlite3")
    now = now_us()
    findings = [
        (
            Finding(Kind.VISIT_DUE, f"P{i:04d}", now - 3 * 86_400_000_000, "需探访", "visit due",
                    site_id="s01", person_id=f"P{i:04d}"),
            "dali/eryuan/xishan/s01",
        )
        for i in range(DUE)
    ]  # fmt: skip
    store.raise_many(findings)
    store.set_flags([(f"P{i:04d}", "lives_alone", True) for i in range(DUE)], now)
    admin = User(1, "admin.dali", (Grant(Role.ADMIN, "dali"),))
    try:
        rows = due_rows(store, registry, admin, now)
        assert len(rows) == DUE
        assert len({r["person_id"] for r in rows}) == DUE
        assert len(store.find(["dali"], kinds=[Kind.VISIT_DUE])) == 500  # the alerts page's page
    finally:
        store.close()
        registry.close()
