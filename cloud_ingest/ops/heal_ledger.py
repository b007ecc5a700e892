"""What self-healing remembers between rounds, in the alerts store every console shares.

- `heal_lease`: which console heals this round. Taken by one atomic upsert, in one write
  transaction of the store, that succeeds only when the lease is free, expired, or already this
  holder's: consoles in several processes or on several hosts (the alerts in PostgreSQL) elect
  one healer.
- `heal_gaps`: per device with seqs missing, when that was first seen, how many were missing at
  the last round, and the resend requests made since the gap last shrank.
- `heal_conflicts`: conflicts already alerted, so a conflict is raised once, not every round.

The tables are made by the alerts store's migrations (cloud_ingest/migrations/alerts).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from cloud_ingest.db import Database

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
    """On the alerts store's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take_lease(self, holder: str, now_us: int, hold_us: int) -> bool:
        """Hold the heal lease until now + hold_us; False while another holder's is current."""
        with self.db.write() as conn:
            taken = conn.execute(
                text(
                    "INSERT INTO heal_lease AS l (name, holder, expires_us)"
                    " VALUES (:name, :holder, :until)"
                    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                    " expires_us = excluded.expires_us"
                    " WHERE l.holder = excluded.holder OR l.expires_us <= :now"
                    " RETURNING holder"
                ),
                {"name": LEASE, "holder": holder, "until": now_us + hold_us, "now": now_us},
            ).first()
        return taken is not None

    def lease(self) -> tuple[str, int] | None:
        """(holder, expires_us) of the heal lease, if anyone ever took it."""
        with self.db.read() as conn:
            row = conn.execute(
                text("SELECT holder, expires_us FROM heal_lease WHERE name = :name"),
                {"name": LEASE},
            ).first()
        return (str(row[0]), int(row[1])) if row else None

    # ------------------------------------------------------------------ gaps

    def gaps(self) -> dict[str, GapState]:
        with self.db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT device_id, first_seen_us, missing, requests, requested_us, alerted"
                    " FROM heal_gaps"
                )
            ).all()
        return {r[0]: GapState(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    def put_gap(self, state: GapState) -> None:
        with self.db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO heal_gaps (device_id, first_seen_us, missing, requests,"
                    " requested_us, alerted) VALUES (:device, :first, :missing, :requests,"
                    " :requested, :alerted) ON CONFLICT (device_id) DO UPDATE SET"
                    " first_seen_us = excluded.first_seen_us, missing = excluded.missing,"
                    " requests = excluded.requests, requested_us = excluded.requested_us,"
                    " alerted = excluded.alerted"
                ),
                {
                    "device": state.device_id,
                    "first": state.first_seen_us,
                    "missing": state.missing,
                    "requests": state.requests,
                    "requested": state.requested_us,
                    "alerted": int(state.alerted),
                },
            )

    def drop_gaps(self, device_ids: list[str]) -> None:
        if not device_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                text("DELETE FROM heal_gaps WHERE device_id = :device"),
                [{"device": d} for d in device_ids],
            )

    # ------------------------------------------------------------------ conflicts

    def new_conflicts(
        self, device_id: str, found: list[tuple[int, str]], now_us: int
    ) -> list[tuple[int, str]]:
        """Record (seq, source) conflicts of a device; returns those not recorded before."""
        new: list[tuple[int, str]] = []
        with self.db.write() as conn:
            for seq, source in found:
                added = conn.execute(
                    text(
                        "INSERT INTO heal_conflicts (device_id, seq, source, seen_us)"
                        " VALUES (:device, :seq, :source, :now) ON CONFLICT DO NOTHING"
                        " RETURNING seq"
                    ),
                    {"device": device_id, "seq": seq, "source": source, "now": now_us},
                ).first()
                if added is not None:
                    new.append((seq, source))
        return new
