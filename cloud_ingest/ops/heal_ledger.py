"""What self-healing remembers between rounds, in the alerts database every console shares.

- `heal_lease`: which console heals this round. Taken by one atomic upsert that succeeds only
  when the lease is free, expired, or already this holder's; the same statement runs on SQLite
  and PostgreSQL, so consoles on several hosts elect one healer once the alerts move there.
- `heal_gaps`: per device with seqs missing, when that was first seen, how many were missing at
  the last round, and the resend requests made since the gap last shrank.
- `heal_conflicts`: conflicts already alerted, so a conflict is raised once, not every round.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS heal_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS heal_gaps (
    device_id     TEXT PRIMARY KEY,
    first_seen_us INTEGER NOT NULL,
    missing       INTEGER NOT NULL,           -- seqs missing at the last round
    requests      INTEGER NOT NULL DEFAULT 0, -- resend requests since the gap last shrank
    requested_us  INTEGER,                    -- the last request
    alerted       INTEGER NOT NULL DEFAULT 0  -- gap_unhealed raised for this stall
);
CREATE TABLE IF NOT EXISTS heal_conflicts (
    device_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    source    TEXT NOT NULL,
    seen_us   INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq, source)
);
"""

LEASE = "heal"


@dataclass(frozen=True)
class GapState:
    device_id: str
    first_seen_us: int
    missing: int
    requests: int
    requested_us: int | None
    alerted: bool


class HealLedger:
    """On a connection to the alerts database, serialised by the lock its other users hold."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.conn = conn
        self.lock = lock
        with self.lock, self.conn:
            self.conn.executescript(SCHEMA)

    def take_lease(self, holder: str, now_us: int, hold_us: int) -> bool:
        """Hold the heal lease until now + hold_us; False while another holder's is current."""
        with self.lock, self.conn:
            cur = self.conn.execute(
                "INSERT INTO heal_lease (name, holder, expires_us) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_us = excluded.expires_us"
                " WHERE heal_lease.holder = excluded.holder OR heal_lease.expires_us <= ?",
                (LEASE, holder, now_us + hold_us, now_us),
            )
        return cur.rowcount == 1

    def lease(self) -> tuple[str, int] | None:
        """(holder, expires_us) of the heal lease, if anyone ever took it."""
        with self.lock:
            row = self.conn.execute(
                "SELECT holder, expires_us FROM heal_lease WHERE name = ?", (LEASE,)
            ).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    # ------------------------------------------------------------------ gaps

    def gaps(self) -> dict[str, GapState]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT device_id, first_seen_us, missing, requests, requested_us, alerted"
                " FROM heal_gaps"
            ).fetchall()
        return {r[0]: GapState(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    def put_gap(self, state: GapState) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT INTO heal_gaps (device_id, first_seen_us, missing, requests,"
                " requested_us, alerted) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET first_seen_us = excluded.first_seen_us,"
                " missing = excluded.missing, requests = excluded.requests,"
                " requested_us = excluded.requested_us, alerted = excluded.alerted",
                (
                    state.device_id,
                    state.first_seen_us,
                    state.missing,
                    state.requests,
                    state.requested_us,
                    int(state.alerted),
                ),
            )

    def drop_gaps(self, device_ids: list[str]) -> None:
        with self.lock, self.conn:
            self.conn.executemany(
                "DELETE FROM heal_gaps WHERE device_id = ?", [(d,) for d in device_ids]
            )

    # ------------------------------------------------------------------ conflicts

    def new_conflicts(
        self, device_id: str, found: list[tuple[int, str]], now_us: int
    ) -> list[tuple[int, str]]:
        """Record (seq, source) conflicts of a device; returns those not recorded before."""
        new: list[tuple[int, str]] = []
        with self.lock, self.conn:
            for seq, source in found:
                cur = self.conn.execute(
                    "INSERT INTO heal_conflicts (device_id, seq, source, seen_us)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (device_id, seq, source, now_us),
                )
                if cur.rowcount == 1:
                    new.append((seq, source))
        return new
