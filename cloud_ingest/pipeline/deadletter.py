"""SQLite store of rejected messages, so bad input is kept for inspection and never lost.

Bounded, because a device decides what it sends: each letter keeps a prefix of the payload
(`keep_bytes`, a whole valid-size event), its full length and SHA-256; a device over its quota
of kept letters is only counted (`dead_letter_overflow`, per device and reason); letters older
than the retention are pruned. Nothing is dropped silently: `counts()` includes the overflow.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest import db
from warmcard.contract import TOPIC_ROOT
from warmcard.rejections import Reason
from warmcard.timestamps import format_ts, now_us
from warmcard.wirejson import MAX_PAYLOAD_BYTES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    received_us INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, id);
CREATE TABLE IF NOT EXISTS dead_letter_overflow (
    device TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    PRIMARY KEY (device, reason)
);
"""
# Added to stores made before the bounds (columns are added once, in place).
_COLUMNS = {
    "device": "TEXT NOT NULL DEFAULT ''",
    "payload_len": "INTEGER",
    "payload_sha256": "TEXT",
}
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
        self.path = Path(path)
        self.keep_bytes = keep_bytes
        self.device_quota = device_quota
        self.retention_us = int(retention_days * 86400 * 1_000_000)
        self._clock = clock
        self._db = db.connect(path, synchronous="FULL", autocommit=True, shared=True)
        self._lock = threading.Lock()
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(dead_letters)")}
        for name, decl in _COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE dead_letters ADD COLUMN {name} {decl}")
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS dead_letters_device ON dead_letters (device, id)"
        )
        self._pruned_us = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_many(self, letters: Iterable[DeadLetter]) -> int:
        """Keep each letter (bounded) or, past its device's quota, count it; returns how many."""
        letters = list(letters)
        if not letters:
            return 0
        with self._lock:
            self._prune_locked()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._add_locked(letters)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(letters)

    def _add_locked(self, letters: list[DeadLetter]) -> int:
        room: dict[str, int] = {}
        rows = []
        overflow: list[tuple[str, str, int, int]] = []
        for d in letters:
            device = _device_of(d.topic)
            if device not in room:
                (held,) = self._db.execute(
                    "SELECT COUNT(*) FROM dead_letters WHERE device = ?", (device,)
                ).fetchone()
                room[device] = self.device_quota - held
            payload = bytes(d.payload)
            if room[device] <= 0:
                overflow.append((device, d.reason.value, len(payload), d.received_us))
                continue
            room[device] -= 1
            rows.append(
                (
                    d.received_us,
                    d.topic[:512],
                    payload[: self.keep_bytes],
                    d.reason.value,
                    d.detail[:2000],
                    device,
                    len(payload),
                    hashlib.sha256(payload).hexdigest(),
                )
            )
        self._db.executemany(
            "INSERT INTO dead_letters (received_us, topic, payload, reason, detail, device, "
            "payload_len, payload_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._db.executemany(
            "INSERT INTO dead_letter_overflow (device, reason, count, bytes, first_us, last_us) "
            "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (device, reason) DO UPDATE SET "
            "count = count + 1, bytes = bytes + excluded.bytes, last_us = excluded.last_us",
            [(dev, reason, size, at, at) for dev, reason, size, at in overflow],
        )
        return len(rows)

    def _prune_locked(self) -> None:
        now = self._clock()
        if now - self._pruned_us < _PRUNE_EVERY_US:
            return
        self._pruned_us = now
        cutoff = now - self.retention_us
        self._db.execute("DELETE FROM dead_letters WHERE received_us < ?", (cutoff,))
        self._db.execute("DELETE FROM dead_letter_overflow WHERE last_us < ?", (cutoff,))

    def add(self, letter: DeadLetter) -> None:
        self.add_many([letter])

    def counts(self) -> dict[str, int]:
        """Per reason: letters kept plus letters only counted past a device's quota."""
        with self._lock:
            kept = self._db.execute(
                "SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason"
            ).fetchall()
            over = self._db.execute(
                "SELECT reason, SUM(count) FROM dead_letter_overflow GROUP BY reason"
            ).fetchall()
        total: Counter[str] = Counter()
        for reason, n in [*kept, *over]:
            total[reason] += n
        return dict(total)

    def overflow(self) -> list[tuple[str, str, int, int]]:
        """(device, reason, count, bytes) of letters counted but not kept, largest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device, reason, count, bytes FROM dead_letter_overflow ORDER BY count DESC"
            ).fetchall()
        return [(str(a), str(b), int(c), int(d)) for a, b, c, d in rows]

    def list(self, limit: int = 100, reason: Reason | str | None = None) -> list[DeadLetter]:
        """Newest first."""
        sql = f"SELECT {_FIELDS} FROM dead_letters"
        args: tuple[object, ...] = ()
        if reason is not None:
            sql += " WHERE reason = ?"
            args = (Reason(reason).value,)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [self._row(r) for r in rows]

    def get(self, letter_id: int) -> DeadLetter | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_FIELDS} FROM dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
        return self._row(row) if row else None

    @staticmethod
    def _row(row: tuple[int, int, str, bytes, str, str, int | None, str | None]) -> DeadLetter:
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
