"""SQLite store of rejected messages, so bad input is kept for inspection and never lost."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest import db
from warmcard.contract import Reason
from warmcard.timestamps import format_ts

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
"""


@dataclass(frozen=True)
class DeadLetter:
    received_us: int
    topic: str
    payload: bytes
    reason: Reason
    detail: str
    id: int | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "received_at": format_ts(self.received_us),
            "topic": self.topic,
            "payload": self.payload.decode("utf-8", "replace"),
            "reason": self.reason.value,
            "detail": self.detail,
        }


class DeadLetterStore:
    """Append-only; `add_many` commits before the caller acks the messages to the broker."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = db.connect(path, synchronous="FULL", autocommit=True, shared=True)
        self._lock = threading.Lock()
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_many(self, letters: Iterable[DeadLetter]) -> int:
        rows = [
            (d.received_us, d.topic, bytes(d.payload), d.reason.value, d.detail[:2000])
            for d in letters
        ]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO dead_letters (received_us, topic, payload, reason, detail) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(rows)

    def add(self, letter: DeadLetter) -> None:
        self.add_many([letter])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason"
            ).fetchall()
        return {reason: n for reason, n in rows}

    def list(self, limit: int = 100, reason: Reason | str | None = None) -> list[DeadLetter]:
        """Newest first."""
        sql = "SELECT id, received_us, topic, payload, reason, detail FROM dead_letters"
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
                "SELECT id, received_us, topic, payload, reason, detail FROM dead_letters "
                "WHERE id = ?",
                (letter_id,),
            ).fetchone()
        return self._row(row) if row else None

    @staticmethod
    def _row(row: tuple[int, int, str, bytes, str, str]) -> DeadLetter:
        return DeadLetter(
            id=row[0],
            received_us=row[1],
            topic=row[2],
            payload=bytes(row[3]),
            reason=Reason(row[4]),
            detail=row[5],
        )
