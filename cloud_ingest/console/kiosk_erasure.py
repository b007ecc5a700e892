"""Erase commands waiting for kiosks: one row per (erasure, kiosk) until the kiosk confirms.

An erasure (cloud_ingest.console.erasure) may run in the console or in `warmcard person erase`,
another process without the console's MQTT link; so it only records here, in the console's
database that every console and the command share, one EraseCommand per registered kiosk. Each
console (cloud_ingest.service, its sync loop) sends the rows of kiosks that are online, QoS 1,
not retained, again every `RESEND_S` until the kiosk's heartbeat lists the request id in
`erased`; then the row is deleted. A kiosk that is offline for days gets the command when it is
back. Rows of kiosks no longer registered are dropped.

A row holds the person id and card numbers (never the name) until its kiosk confirms: that is
what the kiosk needs to find the taps. Deleted rows are zeroed (`secure_delete`) and the WAL
checkpointed, as in the other erased stores.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from cloud_ingest import db
from warmcard.downlink_commands import EraseCommand
from warmcard.timestamps import now_us

RESEND_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kiosk_erasures (
    request_id TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    command    TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    sent_us    INTEGER,
    PRIMARY KEY (request_id, device_id)
);
"""


class KioskErasures:
    """The pending erase commands in the console database; thread-safe."""

    def __init__(self, path: Path | str, *, clock: Callable[[], int] = now_us) -> None:
        self.clock = clock
        self._conn = db.connect(path, autocommit=True, shared=True)
        self._conn.execute("PRAGMA secure_delete = ON")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, person_id: str, card_uids: list[str], token: str, devices: Iterable[str]) -> int:
        """One erase command per kiosk, with the cloud's token; returns how many kiosks."""
        request_id = f"er-{secrets.token_hex(8)}"
        rows = [
            (
                request_id,
                device,
                EraseCommand(
                    request_id=request_id,
                    device_id=device,
                    person_id=person_id,
                    card_uids=card_uids,
                    token=token,
                ).model_dump_json(),
                self.clock(),
            )
            for device in devices
        ]
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT OR IGNORE INTO kiosk_erasures (request_id, device_id, command, "
                "created_us) VALUES (?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def pending(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM kiosk_erasures").fetchone()[0])

    def due(self, online: Collection[str], resend_s: float = RESEND_S) -> list[EraseCommand]:
        """Commands for online kiosks never sent, or sent over `resend_s` ago; marked sent."""
        now = self.clock()
        cut = now - int(resend_s * 1_000_000)
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            rows = self._conn.execute(
                "SELECT request_id, device_id, command FROM kiosk_erasures "
                "WHERE sent_us IS NULL OR sent_us <= ? ORDER BY created_us",
                (cut,),
            ).fetchall()
            rows = [r for r in rows if r[1] in online]
            self._conn.executemany(
                "UPDATE kiosk_erasures SET sent_us = ? WHERE request_id = ? AND device_id = ?",
                [(now, r[0], r[1]) for r in rows],
            )
        return [EraseCommand.model_validate_json(r[2]) for r in rows]

    def confirmed(self, device_id: str, request_ids: Collection[str]) -> int:
        """The kiosk's heartbeat lists these as done: forget them; returns how many rows."""
        if not request_ids:
            return 0
        marks = ",".join("?" * len(request_ids))
        return self._delete(
            f"DELETE FROM kiosk_erasures WHERE device_id = ? AND request_id IN ({marks})",
            [device_id, *request_ids],
        )

    def keep_only(self, registered: Collection[str]) -> int:
        """Drop the rows of kiosks no longer in the registry; returns how many."""
        with self._lock:
            devices = {r[0] for r in self._conn.execute("SELECT device_id FROM kiosk_erasures")}
        gone = sorted(devices - set(registered))
        if not gone:
            return 0
        marks = ",".join("?" * len(gone))
        return self._delete(f"DELETE FROM kiosk_erasures WHERE device_id IN ({marks})", gone)

    def _delete(self, sql: str, params: list[str]) -> int:
        with self._lock:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                deleted = self._conn.execute(sql, params).rowcount
            if deleted:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted
