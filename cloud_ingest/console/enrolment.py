"""Enrolling cards: UIDs typed or pasted in any common form, and kiosk "enrol mode".

Enrol mode: a manager opens a window of N minutes for one device; every unknown_card tap
stored from that device during the window is kept as a capture, which the console offers
for assignment to a person. Every console process sees every stored tap (the stored-taps
channel, cloud_ingest.pipeline.stored) and the captures live in the registry database, so any
console may show them; a capture is keyed by event id, so several consoles store it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text

from cloud_ingest.errors import RegistryEditError
from cloud_ingest.pipeline.stored import StoredTap
from cloud_ingest.registry.store import Registry
from warmcard.cards import BadCardNumber, uid_from_text
from warmcard.contract import Kind

log = logging.getLogger(__name__)

MAX_MINUTES = 120


def card_uid_from_text(text: str, order: str = "le") -> str:
    """The canonical UID for what a person typed or pasted (warmcard.cards); RegistryEditError."""
    try:
        return uid_from_text(text, order)
    except BadCardNumber as exc:
        raise RegistryEditError(str(exc)) from None


@dataclass(frozen=True)
class Capture:
    capture_id: int
    device_id: str
    card_uid: str
    ts_us: int
    known: bool  # the card has an active holder now (assigned since it was tapped)


@dataclass(frozen=True)
class EnrolState:
    device_id: str
    active: bool
    started_us: int | None
    until_us: int | None
    captures: list[Capture]


# A capture, and whether its card has an active holder now.
_CAPTURE_SELECT = (
    "SELECT e.id, e.device_id, e.card_uid, e.ts_us, "
    "EXISTS (SELECT 1 FROM cards c WHERE c.card_uid = e.card_uid AND c.active = 1) "
    "FROM enrol_captures e"
)


class EnrolMode:
    """Enrol windows and captures in the registry database; `observe` is the ingest hook."""

    def __init__(self, registry: Registry, on_window: Callable[[], None] = lambda: None) -> None:
        self.registry = registry
        # Called after a window opens or closes: the service republishes the kiosk's config,
        # whose enrol_until_us makes the kiosk say "登记中" for unknown cards.
        self.on_window = on_window

    def start(self, device_id: str, minutes: float, by: str) -> EnrolState:
        if not 0 < minutes <= MAX_MINUTES:
            raise RegistryEditError(f"分钟数须为 1–{MAX_MINUTES} minutes must be 1–{MAX_MINUTES}")
        now = self.registry.clock()
        with self.registry.write() as db:
            db.execute(
                text(
                    "INSERT INTO enrol_windows (device_id, started_us, until_us, started_by) "
                    "VALUES (:device, :now, :until, :by) ON CONFLICT (device_id) DO UPDATE SET "
                    "started_us = excluded.started_us, until_us = excluded.until_us, "
                    "started_by = excluded.started_by"
                ),
                {
                    "device": device_id,
                    "now": now,
                    "until": now + int(minutes * 60_000_000),
                    "by": by,
                },
            )
        self.on_window()
        return self.state(device_id)

    def stop(self, device_id: str) -> EnrolState:
        with self.registry.write() as db:
            db.execute(
                text("DELETE FROM enrol_windows WHERE device_id = :device"), {"device": device_id}
            )
        self.on_window()
        return self.state(device_id)

    def state(self, device_id: str, limit: int = 20) -> EnrolState:
        """The window (if running) and the captures since it started, newest first."""
        now = self.registry.clock()
        windows = self.registry.query(
            "SELECT started_us, until_us FROM enrol_windows WHERE device_id = :device",
            {"device": device_id},
        )
        row = windows[0] if windows else None
        captures = []
        if row is not None:
            captures = self.registry.query(
                f"{_CAPTURE_SELECT} WHERE e.device_id = :device AND e.ts_us >= :since "
                "ORDER BY e.ts_us DESC LIMIT :limit",
                {"device": device_id, "since": row[0], "limit": limit},
            )
        active = row is not None and row[1] > now
        return EnrolState(
            device_id=device_id,
            active=active,
            started_us=row[0] if row else None,
            until_us=row[1] if row else None,
            captures=[Capture(i, d, u, ts, bool(k)) for i, d, u, ts, k in captures],
        )

    def capture(self, capture_id: int) -> Capture | None:
        rows = self.registry.query(f"{_CAPTURE_SELECT} WHERE e.id = :id", {"id": capture_id})
        row = rows[0] if rows else None
        return Capture(row[0], row[1], row[2], row[3], bool(row[4])) if row else None

    def observe(self, taps: Sequence[StoredTap]) -> int:
        """After a batch is stored: keep unknown cards tapped at kiosks with an open window.

        Returns the number of new captures. Costs one indexed query per batch while no window
        is open.
        """
        now = self.registry.clock()
        windows = dict(
            self.registry.query(
                "SELECT device_id, started_us FROM enrol_windows WHERE until_us > :now",
                {"now": now},
            )
        )
        if not windows:
            return 0
        rows = []
        for tap in taps:
            ev = tap.event
            started = windows.get(ev.device_id)
            # A backlog delivered late holds old unknown taps: only taps made in the window.
            if ev.kind is not Kind.UNKNOWN_CARD or started is None or ev.ts_us < started:
                continue
            rows.append(
                {
                    "event": tap.event_id,
                    "device": ev.device_id,
                    "uid": tap.card_uid,
                    "ts": ev.ts_us,
                    "now": now,
                }
            )
        if not rows:
            return 0
        insert = text(
            "INSERT INTO enrol_captures (event_id, device_id, card_uid, ts_us, captured_us) "
            "VALUES (:event, :device, :uid, :ts, :now) ON CONFLICT (event_id) DO NOTHING"
        )
        with self.registry.write() as db:
            # One row at a time: a statement's rowcount says whether a redelivery was new.
            added = sum(db.execute(insert, row).rowcount for row in rows)
        if added:
            log.info("enrol mode: captured %d unknown card(s)", added)
        return added
