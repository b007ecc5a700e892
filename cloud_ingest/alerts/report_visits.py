"""Visits made, counted for the monthly report from the alerts database (`reports.VisitsSource`)."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.alerts.store import AlertStore, connect


class AlertVisits:
    """Counts the `visits` table of one alerts database, through a connection of its own per
    call: the report runs in a request thread, the engine's connection is for its own thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path

    def visits_in(self, area: str, month: str, tz: str) -> int:
        store = AlertStore(connect(self.db_path))
        try:
            return len(store.visits_in(area, month, tz))
        finally:
            store.close()
