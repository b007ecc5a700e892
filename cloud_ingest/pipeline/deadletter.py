"""The store of rejected messages, so bad input is kept for inspection and never lost.

Bounded, because a device decides what it sends: each letter keeps a prefix of the payload
(`keep_bytes`, a whole valid-size event), its full length and SHA-256; a device over its quota
of kept letters is only counted (`dead_letter_overflow`, per device and reason); letters older
than the retention are pruned. Nothing is dropped silently: `counts()` includes the overflow.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from cloud_ingest.db import Database
from warmcard.contract import TOPIC_ROOT
from warmcard.rejections import Reason
from warmcard.timestamps import format_ts, now_us
from warmcard.wirejson import MAX_PAYLOAD_BYTES

_PRUNE_EVERY_US = 3600 * 1_000_000


def _device_of(topic: str) -> str:
    """The device a letter came from, for its quota; '' for anything off the device tree."""
    parts = topic.split("/")
    if len(parts) == 5 and "/".join(parts[:3]) == TOPIC_ROOT:
        return parts[3][:64]
    return ""


@dataclass(frozen=True)
class DeadLetter:
    received_us: int
    topic: str
    payload: bytes
    reason: Reason
    detail: str
    id: int | None = None
    length: int | None = None  # of the payload as received; None: `payload` is all of it
    sha256: str | None = None

    @property
    def truncated(self) -> bool:
        return self.length is not None and self.length > len(self.payload)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "received_at": format_ts(self.received_us),
            "topic": self.topic,
            "payload": self.payload.decode("utf-8", "replace"),
            "payload_length": len(self.payload) if self.length is None else self.length,
            "payload_sha256": self.sha256 or hashlib.sha256(self.payload).hexdigest(),
            "truncated": self.truncated,
            "reason": self.reason.value,
            "detail": self.detail,
        }


class DeadLetterStore:
    """Append-only but bounded; `add_many` commits before the caller acks the messages."""

    def __init__(
        self,
        path: Path | str,
        *,
        keep_bytes: int = MAX_PAYLOAD_BYTES,
        device_quota: int = 1000,
        retention_days: float = 90.0,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.db = Database(path, "deadletters", synchronous="FULL")
        self.keep_bytes = keep_bytes
        self.device_quota = device_quota
        self.retention_us = int(retention_days * 86400 * 1_000_000)
        self._clock = clock
        self._pruned_us = 0

    def close(self) -> None:
        self.db.close()

    def add_many(self, letters: Iterable[DeadLetter]) -> int:
        """Keep each letter (bounded) or, past its device's quota, count it; returns how many."""
        letters = list(letters)
        if not letters:
            return 0
        with self.db.write() as conn:
            self._prune(conn)
            self._add(conn, letters)
        return len(letters)

    def _add(self, conn: Connection, letters: list[DeadLetter]) -> int:
        room: dict[str, int] = {}
        rows = []
        overflow: list[dict[str, object]] = []
        for d in letters:
            device = _device_of(d.topic)
            if device not in room:
                held = conn.execute(
                    text("SELECT COUNT(*) FROM dead_letters WHERE device = :device"),
                    {"device": device},
                ).scalar_one()
                room[device] = self.device_quota - held
            payload = bytes(d.payload)
            if room[device] <= 0:
                overflow.append(
                    {
                        "device": device,
                        "reason": d.reason.value,
                        "bytes": len(payload),
                        "at": d.received_us,
                    }
                )
                continue
            room[device] -= 1
            rows.append(
                {
                    "received_us": d.received_us,
                    "topic": d.topic[:512],
                    "payload": payload[: self.keep_bytes],
                    "reason": d.reason.value,
                    "detail": d.detail[:2000],
                    "device": device,
                    "payload_len": len(payload),
                    "payload_sha256": hashlib.sha256(payload).hexdigest(),
                }
            )
        if rows:
            conn.execute(
                text(
                    "INSERT INTO dead_letters (received_us, topic, payload, reason, detail, "
                    "device, payload_len, payload_sha256) VALUES (:received_us, :topic, "
                    ":payload, :reason, :detail, :device, :payload_len, :payload_sha256)"
                ),
                rows,
            )
        for row in overflow:  # one at a time: a batch may count one device twice
            conn.execute(
                text(
                    "INSERT INTO dead_letter_overflow AS o "
                    "(device, reason, count, bytes, first_us, last_us) "
                    "VALUES (:device, :reason, 1, :bytes, :at, :at) "
                    "ON CONFLICT (device, reason) DO UPDATE SET count = o.count + 1, "
                    "bytes = o.bytes + excluded.bytes, last_us = excluded.last_us"
                ),
                row,
            )
        return len(rows)

    def _prune(self, conn: Connection) -> None:
        now = self._clock()
        if now - self._pruned_us < _PRUNE_EVERY_US:
            return
        self._pruned_us = now
        cutoff = now - self.retention_us
        cut = {"cutoff": cutoff}
        conn.execute(text("DELETE FROM dead_letters WHERE received_us < :cutoff"), cut)
        conn.execute(text("DELETE FROM dead_letter_overflow WHERE last_us < :cutoff"), cut)

    def add(self, letter: DeadLetter) -> None:
        self.add_many([letter])

    def counts(self) -> dict[str, int]:
        """Per reason: letters kept plus letters only counted past a device's quota."""
        with self.db.read() as conn:
            kept = conn.execute(
                text("SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason")
            ).all()
            over = conn.execute(
                text("SELECT reason, SUM(count) FROM dead_letter_overflow GROUP BY reason")
            ).all()
        total: Counter[str] = Counter()
        for reason, n in [*kept, *over]:
            total[reason] += int(n)
        return dict(total)

    def overflow(self) -> list[tuple[str, str, int, int]]:
        """(device, reason, count, bytes) of letters counted but not kept, largest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT device, reason, count, bytes FROM dead_letter_overflow "
                    "ORDER BY count DESC"
                )
            ).all()
        return [(str(a), str(b), int(c), int(d)) for a, b, c, d in rows]

    def list(self, limit: int = 100, reason: Reason | str | None = None) -> list[DeadLetter]:
        """Newest first."""
        where = "" if reason is None else " WHERE reason = :reason"
        params = {"limit": limit, "reason": None if reason is None else Reason(reason).value}
        with self.db.read() as conn:
            rows = conn.execute(
                text(f"SELECT {_FIELDS} FROM dead_letters{where} ORDER BY id DESC LIMIT :limit"),
                params,
            ).all()
        return [self._row(tuple(r)) for r in rows]

    def get(self, letter_id: int) -> DeadLetter | None:
        with self.db.read() as conn:
            row = conn.execute(
                text(f"SELECT {_FIELDS} FROM dead_letters WHERE id = :id"), {"id": letter_id}
            ).first()
        return self._row(tuple(row)) if row else None

    @staticmethod
    def _row(row: tuple[Any, ...]) -> DeadLetter:
        return DeadLetter(
            id=row[0],
            received_us=row[1],
            topic=row[2],
            payload=bytes(row[3]),
            reason=Reason(row[4]),
            detail=row[5],
            length=row[6],
            sha256=row[7],
        )


_FIELDS = "id, received_us, topic, payload, reason, detail, payload_len, payload_sha256"
