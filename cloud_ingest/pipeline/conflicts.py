"""Conflict detection: a seq or event_id seen again with different content is an alarm.

InfluxDB would take a second write of seq N silently: with the same time and tags it overwrites
the first point's fields, with another time or kind it adds a second point with seq N. Before a
batch is written, every event is checked against an index of what this worker has already seen:

    (device, seq) -> digest of the event's content, and event_id -> (device, seq)

An identical redelivery (MQTT is at-least-once) passes, and so does a tap whose person and card
a kiosk replaced by an erasure's token (v1.3) when all else is the same (the `shape` digest); a
different content under a known (device, seq), or a known event_id under another (device, seq),
is a conflict: the message is dead-lettered with reason `conflict`, recorded in the `conflicts`
table, and the first content stays what counts.

The index is one SQLite file, checked and updated per batch in one transaction: a batch of new
events costs one `executemany` of INSERT OR IGNORE; only when some row was already there are the
batch's rows looked up one by one. `synchronous=NORMAL`: a power cut may lose the last batches of
the index, never events (those are in InfluxDB, and reconcile's storage check is the backstop).

Several workers: each worker's index sees only what the broker routed to it. Workers on one host
should share one file (SQLite locks across processes); workers on different hosts can miss a
conflict whose two versions went to different workers. Reconcile then still finds two points with
one seq in InfluxDB, except for the one case InfluxDB hides: same time and same kind, different
fields (the second overwrote the first). See docs/guarantees.md.

Rows are kept `retention_days` after they were first seen, then pruned a chunk at a time.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest import db
from warmcard.contract import TapEvent
from warmcard.timestamps import format_ts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id BLOB NOT NULL,
    digest BLOB NOT NULL,
    ts_us INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    shape BLOB,
    UNIQUE (device, seq),
    UNIQUE (event_id)
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    received_us INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    rule TEXT NOT NULL CHECK (rule IN ('seq', 'event_id')),
    first_seq INTEGER NOT NULL,
    first_event_id TEXT NOT NULL,
    first_ts_us INTEGER NOT NULL,
    digest BLOB NOT NULL,
    UNIQUE (device, seq, digest)
);
CREATE INDEX IF NOT EXISTS conflicts_by_device ON conflicts (device, ts_us);
"""

_INSERT = (
    "INSERT OR IGNORE INTO seen (device, seq, event_id, digest, ts_us, first_us, shape) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# (device, seq, event_id, digest, ts_us, first_us, shape): one row of `seen`, as inserted.
_Row = tuple[str, int, bytes, bytes, int, int, bytes]
PRUNE_EVERY_US = 3600 * 1_000_000
PRUNE_CHUNK = 50_000


_blake2b = hashlib.blake2b


def content_digest(event: TapEvent) -> bytes:
    """16 bytes naming everything an event says besides its (device, seq) key."""
    # One f-string and one hash call: this runs for every event on the hot path. The enums are
    # StrEnums, which format as their values.
    text = (
        f"{event.event_id}\x1f{event.ts}\x1f{event.card_uid}\x1f{event.kind}\x1f"
        f"{event.meal_period or ''}\x1f{event.person_id or ''}\x1f"
        f"{event.auto:d}{event.clock_synced:d}"
    )
    return _blake2b(text.encode(), digest_size=16).digest()


def shape_digest(event: TapEvent) -> bytes:
    """The content digest without the person's ids: what an erasure at the kiosk (v1.3, the
    ids replaced by a token) leaves unchanged."""
    text = (
        f"{event.event_id}\x1f{event.ts}\x1f{event.kind}\x1f{event.meal_period or ''}\x1f"
        f"{event.auto:d}{event.clock_synced:d}"
    )
    return _blake2b(text.encode(), digest_size=16).digest()


def _id_bytes(event_id: str) -> bytes:
    """The UUID's 16 bytes (the contract's pattern guarantees the canonical form)."""
    return bytes.fromhex(event_id.replace("-", ""))


@dataclass(frozen=True)
class Conflict:
    """One message refused because its seq or event_id was seen with other content."""

    received_us: int
    device_id: str
    seq: int
    event_id: str
    ts_us: int
    rule: str  # "seq": same (device, seq), other content; "event_id": id reused elsewhere
    first_seq: int
    first_event_id: str
    first_ts_us: int
    id: int | None = None

    @property
    def detail(self) -> str:
        if self.rule == "seq":
            return (
                f"seq {self.seq} of {self.device_id} seen before with other content "
                f"(first: event {self.first_event_id} at {format_ts(self.first_ts_us)}; "
                f"now: event {self.event_id} at {format_ts(self.ts_us)})"
            )
        return (
            f"event_id {self.event_id} seen before as seq {self.first_seq} at "
            f"{format_ts(self.first_ts_us)}; now as seq {self.seq} of {self.device_id}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "received_at": format_ts(self.received_us),
            "device_id": self.device_id,
            "seq": self.seq,
            "event_id": self.event_id,
            "ts": format_ts(self.ts_us),
            "rule": self.rule,
            "first_seq": self.first_seq,
            "first_event_id": self.first_event_id,
            "first_ts": format_ts(self.first_ts_us),
            "detail": self.detail,
        }


class SeenIndex:
    """The per-worker (or per-host) index; thread-safe, one transaction per `admit`."""

    def __init__(self, path: Path | str, *, retention_days: float = 60.0) -> None:
        self.path = Path(path)
        self.retention_us = int(retention_days * 86400 * 1_000_000)
        # Workers on one host share the file (db.connect's busy timeout).
        self._db = db.connect(path, autocommit=True, shared=True)
        self._lock = threading.Lock()
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(seen)")}
        if "shape" not in columns:  # an index from before v1.3: its rows have no shape
            self._db.execute("ALTER TABLE seen ADD COLUMN shape BLOB")
        self._next_prune_us = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def admit(
        self, events: Sequence[TapEvent], now_us: int, ts_us: Sequence[int] | None = None
    ) -> dict[int, Conflict]:
        """Record the batch's events; returns {index in `events`: Conflict} for refused ones.

        `ts_us`: the events' times in µs if the caller has them (saves parsing them again).
        """
        if ts_us is None:
            ts_us = [event.ts_us for event in events]
        rows = [
            (
                e.device_id,
                e.seq,
                _id_bytes(e.event_id),
                content_digest(e),
                ts,
                now_us,
                shape_digest(e),
            )
            for e, ts in zip(events, ts_us, strict=True)
        ]
        conflicts: dict[int, Conflict] = {}
        positions: Sequence[int] = range(len(rows))
        if not len(rows) == len({row[:2] for row in rows}) == len({row[2] for row in rows}):
            rows, positions, conflicts = self._within_batch(events, rows, now_us)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany(_INSERT, rows)
                if db.total_changes - before != len(rows):
                    # Some rows existed (a redelivery, or a conflict): look at each one.
                    for pos, row in zip(positions, rows, strict=True):
                        found = self._compare(row, erased=events[pos].erased)
                        if found is not None:
                            rule, first_seq, first_eid, first_ts = found
                            conflicts[pos] = self._conflict(
                                now_us, events[pos], rule, first_seq, first_eid, first_ts
                            )
                if conflicts:
                    db.executemany(
                        "INSERT OR IGNORE INTO conflicts (received_us, device, seq, event_id, "
                        "ts_us, rule, first_seq, first_event_id, first_ts_us, digest) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                c.received_us,
                                c.device_id,
                                c.seq,
                                c.event_id,
                                c.ts_us,
                                c.rule,
                                c.first_seq,
                                c.first_event_id,
                                c.first_ts_us,
                                content_digest(events[i]),
                            )
                            for i, c in conflicts.items()
                        ],
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if now_us >= self._next_prune_us:
            self._next_prune_us = now_us + PRUNE_EVERY_US
            self.prune(now_us)
        return conflicts

    def _within_batch(
        self, events: Sequence[TapEvent], rows: list[_Row], now_us: int
    ) -> tuple[list[_Row], list[int], dict[int, Conflict]]:
        """A batch that names a (device, seq) or event_id twice: the first copy is written, an
        identical later one passes, a different one is a conflict. (rows, their positions in
        `events`, conflicts)."""
        kept: list[_Row] = []
        positions: list[int] = []
        conflicts: dict[int, Conflict] = {}
        in_batch: dict[tuple[str, int], int] = {}
        ids_in_batch: dict[bytes, int] = {}
        for i, row in enumerate(rows):
            key, eid = (row[0], row[1]), row[2]
            earlier = in_batch.get(key)
            if earlier is None:
                earlier = ids_in_batch.get(eid)
            if earlier is not None:
                first = kept[earlier]
                if first[:4] != row[:4]:
                    rule = "seq" if first[:2] == row[:2] else "event_id"
                    conflicts[i] = self._conflict(
                        now_us, events[i], rule, first[1], first[2], first[4]
                    )
                continue  # identical copy within the batch: written once, passes
            in_batch[key] = len(kept)
            ids_in_batch[eid] = len(kept)
            kept.append(row)
            positions.append(i)
        return kept, positions, conflicts

    def _compare(self, row: _Row, *, erased: bool = False) -> tuple[str, int, bytes, int] | None:
        """None when the stored row says the same; else (rule, first seq, first id, first ts).

        `erased`: the event's ids are an erasure's token (the kiosk pseudonymised it, v1.3); it
        is the same event when all but the ids are (its shape; for a row from before v1.3, its
        id and time), and the first digest is kept.
        """
        device, seq, eid, digest, ts, _, shape = row
        stored = self._db.execute(
            "SELECT event_id, digest, ts_us, shape FROM seen WHERE device = ? AND seq = ?",
            (device, seq),
        ).fetchone()
        if stored is not None:
            if bytes(stored[1]) == digest:
                return None
            if erased and (
                bytes(stored[3]) == shape
                if stored[3] is not None
                else bytes(stored[0]) == eid and int(stored[2]) == ts
            ):
                return None
            return "seq", seq, bytes(stored[0]), int(stored[2])
        other = self._db.execute(
            "SELECT seq, ts_us FROM seen WHERE event_id = ?", (eid,)
        ).fetchone()
        if other is None:  # unreachable: the INSERT OR IGNORE ignored it for one of the two keys
            return None
        return "event_id", int(other[0]), eid, int(other[1])

    @staticmethod
    def _conflict(
        now_us: int, event: TapEvent, rule: str, first_seq: int, first_eid: bytes, first_ts: int
    ) -> Conflict:
        return Conflict(
            received_us=now_us,
            device_id=event.device_id,
            seq=event.seq,
            event_id=event.event_id,
            ts_us=event.ts_us,
            rule=rule,
            first_seq=first_seq,
            first_event_id=str(uuid.UUID(bytes=first_eid)),
            first_ts_us=first_ts,
        )

    def prune(self, now_us: int) -> int:
        """Forget rows first seen before the retention period; at most PRUNE_CHUNK per call."""
        cutoff = now_us - self.retention_us
        with self._lock:
            db = self._db
            lo_hi = db.execute("SELECT min(id), max(id) FROM seen").fetchone()
            deleted = 0
            if lo_hi[0] is not None:
                # Ids grow with first_us (rows are appended as they arrive): binary search the
                # first id to keep instead of indexing first_us, which every insert would pay.
                lo, hi = int(lo_hi[0]), int(lo_hi[1]) + 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    row = db.execute(
                        "SELECT id, first_us FROM seen WHERE id >= ? ORDER BY id LIMIT 1", (mid,)
                    ).fetchone()
                    if row is not None and int(row[1]) < cutoff:
                        lo = int(row[0]) + 1
                    else:
                        hi = mid
                first_kept = min(lo, int(lo_hi[0]) + PRUNE_CHUNK)
                deleted = db.execute("DELETE FROM seen WHERE id < ?", (first_kept,)).rowcount
            db.execute("DELETE FROM conflicts WHERE received_us < ?", (cutoff,))
        return deleted

    def conflicts(
        self,
        device_id: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        limit: int = 1000,
    ) -> list[Conflict]:
        """Recorded conflicts, by the conflicting event's time; newest first."""
        sql = (
            "SELECT id, received_us, device, seq, event_id, ts_us, rule, first_seq, "
            "first_event_id, first_ts_us FROM conflicts WHERE 1 = 1"
        )
        args: list[object] = []
        if device_id is not None:
            sql += " AND device = ?"
            args.append(device_id)
        if start_us is not None:
            sql += " AND ts_us >= ?"
            args.append(start_us)
        if end_us is not None:
            sql += " AND ts_us < ?"
            args.append(end_us)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            Conflict(
                id=r[0],
                received_us=r[1],
                device_id=r[2],
                seq=r[3],
                event_id=r[4],
                ts_us=r[5],
                rule=r[6],
                first_seq=r[7],
                first_event_id=r[8],
                first_ts_us=r[9],
            )
            for r in rows
        ]

    def size(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM seen").fetchone()[0])
