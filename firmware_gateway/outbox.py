"""The durable outbox: every tap is committed to SQLite before the kiosk answers it.

A committed tap survives a crash or power cut (WAL, synchronous=FULL). It is sent by the uplink
and leaves the "pending" state only when the broker has acknowledged it; acknowledged events are
kept for a retention period so that a gap found later can be re-sent, and so that the kiosk can
rebuild today's state (who is inside, meals served) after a restart.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_gateway.clock import Clock
from firmware_gateway.errors import OutboxError, OutboxFull
from warmcard.contract import EARLIEST_EVENT, Kind, MealPeriod, TapEvent
from warmcard.downlink_commands import EraseCommand
from warmcard.timestamps import format_ts, new_event_id

log = logging.getLogger("warmcard.gateway.outbox")

DEFAULT_RETENTION_S = 14 * 86400

PENDING = "pending"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    ts_us        INTEGER NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'acked', 'rejected')),
    acked_us     INTEGER,
    reject_code  INTEGER,
    reject_text  TEXT,
    reject_count INTEGER NOT NULL DEFAULT 0,
    rejected_us  INTEGER
);
CREATE INDEX IF NOT EXISTS events_by_status ON events (status, seq);
CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts_us);
INSERT OR IGNORE INTO state (key, value) VALUES ('last_seq', 0), ('last_ts_us', 0);
"""

# No event is stamped before the contract's earliest time: a Pi without an RTC boots in 1970
# (or at its last fake-hwclock save) and its taps would otherwise be dead-lettered as
# clock_past by ingest, i.e. lost from every count. Such events carry clock_synced=false.
EARLIEST_TS_US = int(EARLIEST_EVENT.timestamp()) * 1_000_000

# SQLITE_FULL: "database or disk is full" (also raised when max_page_count is reached).
_SQLITE_FULL = 13


@dataclass(frozen=True)
class Rejection:
    seq: int
    code: int
    text: str
    count: int


class Outbox:
    """One device's outbox. Thread-safe: the reader, uplink and MQTT threads share it."""

    def __init__(
        self,
        path: Path | str,
        device_id: str,
        clock: Clock,
        *,
        min_free_bytes: int = 50 * 1024 * 1024,
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        self.path = Path(path)
        self.device_id = device_id
        self.clock = clock
        self.min_free_bytes = min_free_bytes
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, one transaction per call.
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL fsyncs the WAL at every commit: a tap the kiosk has answered is on the card.
            self._db.execute("PRAGMA synchronous=FULL")
            # Deleted and rewritten rows are zeroed, not left in free pages: an erased person's
            # card and id leave the file, not just the rows (docs/security.md, "Erasure").
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._translate(exc, "open") from None

    # ------------------------------------------------------------------ writing

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` (cheap, non-blocking) after each commit of a new event."""
        self._listeners.append(callback)

    def record(
        self,
        card_uid: str,
        kind: Kind,
        *,
        person_id: str | None = None,
        meal_period: MealPeriod | None = None,
        auto: bool = False,
        clock_synced: bool = True,
        manual: bool = False,
        witness_card: str | None = None,
    ) -> TapEvent:
        """Commit one tap and return it; raises OutboxFull or OutboxError, never half-records."""
        self._check_disk()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    last_seq, last_ts = self._state()
                    seq = last_seq + 1
                    # Strictly increasing per device: a clock that stands still or steps back
                    # (NTP correction, RTC-less boot) still orders events correctly; and never
                    # before the contract's earliest time (see EARLIEST_TS_US).
                    ts = max(self.clock.now_us(), last_ts + 1, EARLIEST_TS_US)
                    event = TapEvent(
                        event_id=new_event_id(ts),
                        device_id=self.device_id,
                        seq=seq,
                        ts=format_ts(ts),
                        card_uid=card_uid,
                        kind=kind,
                        meal_period=meal_period,
                        person_id=person_id,
                        auto=auto,
                        clock_synced=clock_synced,
                        manual=manual,
                        witness_card=witness_card,
                    )
                    self._db.execute(
                        "INSERT INTO events (seq, ts_us, payload, status) VALUES (?, ?, ?, ?)",
                        (seq, ts, event.model_dump_json(), PENDING),
                    )
                    self._db.execute("UPDATE state SET value=? WHERE key='last_seq'", (seq,))
                    self._db.execute("UPDATE state SET value=? WHERE key='last_ts_us'", (ts,))
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._translate(exc, "record a tap") from None
        for listener in self._listeners:
            listener()
        return event

    def _state(self) -> tuple[int, int]:
        rows = dict(self._db.execute("SELECT key, value FROM state").fetchall())
        return int(rows["last_seq"]), int(rows["last_ts_us"])

    def _check_disk(self) -> None:
        free = self.disk_free_bytes()
        if free < self.min_free_bytes:
            raise OutboxFull(
                f"only {free} bytes free in {self.path.parent} (minimum {self.min_free_bytes}): "
                "tap refused; free space on the SD card or replace it"
            )

    def disk_free_bytes(self) -> int:
        return shutil.disk_usage(self.path.parent).free

    def _translate(self, exc: sqlite3.Error, what: str) -> OutboxFull | OutboxError:
        code = getattr(exc, "sqlite_errorcode", None)
        full = code is not None and code & 0xFF == _SQLITE_FULL
        if full or "database or disk is full" in str(exc):
            return OutboxFull(f"outbox {self.path} is full ({exc}); free space on the SD card")
        return OutboxError(f"outbox {self.path}: cannot {what}: {exc}; check the SD card")

    def _write(self, what: str, sql: str, params: Iterable[tuple[object, ...]]) -> int:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    changed = 0
                    for row in params:
                        changed += self._db.execute(sql, row).rowcount
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._translate(exc, what) from None
        return changed

    def mark_acked(self, seqs: Iterable[int]) -> int:
        """The broker acknowledged these events (PUBACK < 0x80); returns how many changed."""
        now = self.clock.now_us()
        return self._write(
            "mark events acknowledged",
            "UPDATE events SET status='acked', acked_us=? WHERE seq=? AND status!='acked'",
            ((now, seq) for seq in seqs),
        )

    def mark_rejected(self, seq: int, reason_code: int, reason_text: str) -> None:
        """The broker refused this event; it is kept, counted, and retried later."""
        self._write(
            "mark an event rejected",
            "UPDATE events SET status='rejected', reject_code=?, reject_text=?, "
            "reject_count=reject_count+1, rejected_us=? WHERE seq=? AND status!='acked'",
            [(reason_code, reason_text[:200], self.clock.now_us(), seq)],
        )

    def retry_rejected(self) -> int:
        """Put every rejected event back in line to be sent; returns how many."""
        return self._write(
            "retry rejected events",
            "UPDATE events SET status='pending' WHERE status='rejected'",
            [()],
        )

    def resend(self, from_seq: int, to_seq: int) -> int:
        """Mark a retained range pending again (a gap found by reconciliation); returns how many."""
        return self._write(
            "mark events for re-sending",
            "UPDATE events SET status='pending' WHERE seq BETWEEN ? AND ? AND status='acked'",
            [(from_seq, to_seq)],
        )

    def erase(self, command: EraseCommand) -> int:
        """Pseudonymise every event (any status) naming the person or a card; returns how many.

        Then the WAL is checkpointed and truncated, so the old versions leave the WAL file too.
        """
        needles = [f'"{command.person_id}"', *(f'"{c}"' for c in command.card_uids)]
        where = " OR ".join("instr(payload, ?) > 0" for _ in needles)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    changed = 0
                    rows = self._db.execute(
                        f"SELECT seq, payload FROM events WHERE {where}", needles
                    ).fetchall()
                    for seq, payload in rows:
                        event = command.pseudonymise(TapEvent.model_validate_json(str(payload)))
                        if event is not None:
                            self._db.execute(
                                "UPDATE events SET payload=? WHERE seq=?",
                                (event.model_dump_json(), seq),
                            )
                            changed += 1
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise self._translate(exc, "erase a person's taps") from None
        return changed

    def prune_acked(self, older_than_us: int | None = None) -> int:
        """Delete acknowledged events older than the cut-off (default: now - retention)."""
        if older_than_us is None:
            older_than_us = self.clock.now_us() - int(self.retention_s * 1_000_000)
        return self._write(
            "prune acknowledged events",
            "DELETE FROM events WHERE status='acked' AND ts_us < ?",
            [(older_than_us,)],
        )

    # ------------------------------------------------------------------ reading

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._translate(exc, "read") from None

    def pending(self, limit: int = 100) -> list[TapEvent]:
        """Events waiting to be sent, oldest first (rejected ones wait for retry_rejected)."""
        rows = self._read(
            "SELECT payload FROM events WHERE status='pending' ORDER BY seq LIMIT ?", (limit,)
        )
        return [TapEvent.model_validate_json(str(row[0])) for row in rows]

    def events_since(self, since_us: int) -> list[TapEvent]:
        """Every retained event (sent or not) with event time >= since_us, in seq order."""
        rows = self._read("SELECT payload FROM events WHERE ts_us >= ? ORDER BY seq", (since_us,))
        return [TapEvent.model_validate_json(str(row[0])) for row in rows]

    def depth(self) -> int:
        """Events not yet acknowledged by the broker (pending or rejected)."""
        return int(self._read("SELECT count(*) FROM events WHERE status!='acked'")[0][0])

    def rejected(self) -> list[Rejection]:
        rows = self._read(
            "SELECT seq, reject_code, reject_text, reject_count FROM events "
            "WHERE status='rejected' ORDER BY seq"
        )
        return [Rejection(int(s), int(c), str(t), int(n)) for s, c, t, n in rows]

    def rejected_total(self) -> int:
        """Events currently held back because the broker refused them."""
        return int(self._read("SELECT count(*) FROM events WHERE status='rejected'")[0][0])

    def last_seq(self) -> int:
        with self._lock:
            return self._state()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
