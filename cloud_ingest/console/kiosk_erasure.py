"""Erase commands waiting for kiosks: one row per (erasure, kiosk) until the kiosk confirms.

An erasure (cloud_ingest.console.erasure) may run in the console or in `warmcard person erase`,
another process without the console's MQTT link; so it only records here, in the console's
database that every console and the command share, one EraseCommand per registered kiosk. Each
console (cloud_ingest.service, its sync loop) sends the rows of kiosks that are online, QoS 1,
not retained, again every `RESEND_S` until the kiosk's heartbeat lists the request id in
`erased`; then the row is deleted. A kiosk that is offline for days gets the command when it is
back. Rows of kiosks no longer registered are dropped.

A row holds the person id and card numbers (never the name) until its kiosk confirms: that is
what the kiosk needs to find the taps. After rows are deleted the table is scrubbed
(`Database.scrub`), as in the other erased stores.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from sqlalchemy import text

from cloud_ingest.db import Database
from cloud_ingest.registry.store import statement
from warmcard.downlink_commands import EraseCommand
from warmcard.timestamps import now_us

RESEND_S = 60.0
TABLE = "kiosk_erasures"


class KioskErasures:
    """The pending erase commands in the console store; thread-safe."""

    def __init__(self, location: Path | str, *, clock: Callable[[], int] = now_us) -> None:
        self.clock = clock
        self.db = Database(location, "console")

    def close(self) -> None:
        self.db.close()

    def add(self, person_id: str, card_uids: list[str], token: str, devices: Iterable[str]) -> int:
        """One erase command per kiosk, with the cloud's token; returns how many kiosks."""
        request_id = f"er-{secrets.token_hex(8)}"
        rows = [
            {
                "request": request_id,
                "device": device,
                "command": EraseCommand(
                    request_id=request_id,
                    device_id=device,
                    person_id=person_id,
                    card_uids=card_uids,
                    token=token,
                ).model_dump_json(),
                "now": self.clock(),
            }
            for device in devices
        ]
        if rows:
            with self.db.write() as conn:
                conn.execute(
                    text(
                        "INSERT INTO kiosk_erasures (request_id, device_id, command, created_us)"
                        " VALUES (:request, :device, :command, :now) ON CONFLICT DO NOTHING"
                    ),
                    rows,
                )
        return len(rows)

    def pending(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(text("SELECT count(*) FROM kiosk_erasures")).scalar_one())

    def due(self, online: Collection[str], resend_s: float = RESEND_S) -> list[EraseCommand]:
        """Commands for online kiosks never sent, or sent over `resend_s` ago; marked sent."""
        now = self.clock()
        cut = now - int(resend_s * 1_000_000)
        with self.db.write() as conn:
            rows = conn.execute(
                text(
                    "SELECT request_id, device_id, command FROM kiosk_erasures WHERE sent_us IS "
                    "NULL OR sent_us <= :cut ORDER BY created_us, request_id, device_id"
                ),
                {"cut": cut},
            ).all()
            rows = [r for r in rows if r[1] in online]
            if rows:
                conn.execute(
                    text(
                        "UPDATE kiosk_erasures SET sent_us = :now"
                        " WHERE request_id = :request AND device_id = :device"
                    ),
                    [{"now": now, "request": r[0], "device": r[1]} for r in rows],
                )
        return [EraseCommand.model_validate_json(r[2]) for r in rows]

    def confirmed(self, device_id: str, request_ids: Collection[str]) -> int:
        """The kiosk's heartbeat lists these as done: forget them; returns how many rows."""
        if not request_ids:
            return 0
        return self._delete(
            "device_id = :device AND request_id IN :ids",
            {"device": device_id, "ids": list(request_ids)},
        )

    def keep_only(self, registered: Collection[str]) -> int:
        """Drop the rows of kiosks no longer in the registry; returns how many."""
        with self.db.read() as conn:
            devices = {r[0] for r in conn.execute(text("SELECT device_id FROM kiosk_erasures"))}
        gone = sorted(devices - set(registered))
        if not gone:
            return 0
        return self._delete("device_id IN :ids", {"ids": gone})

    def _delete(self, where: str, params: dict[str, object]) -> int:
        sql = f"DELETE FROM kiosk_erasures WHERE {where}"
        with self.db.write() as conn:
            deleted = conn.execute(statement(sql, params), params).rowcount
        if deleted:
            self.db.scrub([TABLE])
        return deleted
