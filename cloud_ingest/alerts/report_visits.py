"""Visits made, counted for the monthly report from the alerts store (`reports.VisitsSource`)."""

from __future__ import annotations

from cloud_ingest.alerts.store import AlertStore


class AlertVisits:
    """Counts the `visits` of one alerts store (thread-safe: the report runs in a request
    thread, beside the engine's)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def visits_in(self, area: str, month: str, tz: str) -> int:
        return len(self.store.visits_in(area, month, tz))
