"""The console's stores keep data for their retention, then delete it (issue #9, item 11).

Before: card history, alerts and visits were kept forever; nothing deleted them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.console.audit import Action, AuditEvent, AuditLog, ObjectKind
from cloud_ingest.service import ConsoleService
from cloud_ingest.settings import IngestSettings
from tests.support.ingest import write_registry

DAY = 86_400_000_000
T0 = 1_790_000_000_000_000  # 2026-09-21 UTC


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def counts(service: ConsoleService) -> tuple[int, int, int, int]:
    conn = service.alerts.store.conn
    ended = service.registry.query(
        "SELECT count(*) FROM card_assignments WHERE valid_to IS NOT NULL"
    )[0][0]
    held = service.registry.query("SELECT count(*) FROM card_assignments WHERE valid_to IS NULL")
    alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    visits = conn.execute("SELECT count(*) FROM visits").fetchone()[0]
    return ended, held[0][0], alerts, visits


def test_each_store_keeps_its_retention_then_deletes(tmp_path: Path) -> None:
    ids = write_registry(tmp_path, "ret")
    settings = IngestSettings(
        registry_path=tmp_path / "registry.sqlite3",
        deadletter_path=tmp_path / "deadletter.sqlite3",
        console_db=tmp_path / "console.sqlite3",
    )
    clock = Clock()
    service = ConsoleService(settings, clock=clock)
    try:
        with service.registry.change() as db:  # the card passes from P0001 to P0002 at T0
            db.execute(text("UPDATE cards SET person_id = 'P0002' WHERE card_uid = '04A1B201'"))
        store = service.alerts.store
        finding = Finding(Kind.TAP_BURST, ids["gate_a"], T0, "刷卡过多", "burst", ids["site_a"])
        closed = store.raise_alert(finding, "")
        store.close_alert(closed, "admin", T0)
        store.raise_alert(Finding(Kind.DEVICE_OFFLINE, ids["gate_b"], T0, "离线", "offline"), "")
        store.record_visit("P0003", "", T0, "watcher", "血压正常 blood pressure fine", None)
        audit = AuditLog(settings.console_db, clock=clock)
        viewed = AuditEvent("watcher", Action.VIEW, ObjectKind.PERSON, "P0003", {}, "10.0.0.9", 200)
        audit.append(viewed)
        before = counts(service)
        assert before == (1, 10, 2, 1)
        clock.now = T0 + 364 * DAY
        assert service.apply_retention() == (0, 0, 0, 0)
        clock.now = T0 + 366 * DAY  # the closed alert goes; the open one stays
        audit.append(viewed)  # a year later: this row outlives the first
        assert service.apply_retention() == (0, 1, 0, 0)
        clock.now = T0 + 1097 * DAY  # history, visits and audit rows after 3 years
        assert service.apply_retention() == (1, 0, 1, 1)
        assert counts(service) == (0, 10, 1, 0)
        # The audit row left still verifies, from the checkpoint the pruned one left behind.
        verdict = audit.verify()
        assert verdict.ok and verdict.rows == 1
        audit.close()
    finally:
        service.stop() if service.started else _close(service)


def _close(service: ConsoleService) -> None:
    service.alerts.stop()
    service.query_storage.close()
    service.registry.close()
    service.deadletters.close()
    service.seen.close()
