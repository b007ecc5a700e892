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

The index is the `conflicts` store (cloud_ingest.db: an SQLite file on one machine, the shared
PostgreSQL database on several), checked and updated per batch in one write transaction: one
`executemany` of `INSERT ... ON CONFLICT DO NOTHING` (the unique constraints on (device, seq) and
on event_id decide, atomically against every other worker, not a read before the write); its
row count says whether every row was new. Only when some row was already there are the batch's
rows looked up, by event id (one query per 500) and, for those not found so, by (device, seq).
On SQLite `synchronous=NORMAL`: a power cut may lose the last batches of the index, never
events (those are in InfluxDB, and reconcile's storage check is the backstop).

Several workers: on PostgreSQL every worker on every host shares the one index, so a conflict is
caught whichever worker each version reached. With SQLite files, workers on one host share one
file (SQLite locks across processes); workers on different hosts can miss a conflict whose two
versions went to different workers. Reconcile then still finds two points with one seq in
InfluxDB, except for the one case InfluxDB hides: same time and same kind, different fields (the
second overwrote the first). See docs/guarantees.md.

Rows are kept `retention_days` after they were first seen, then pruned a chunk at a time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, column, select, table, text

from cloud_ingest.db import Database, insert_many
from warmcard.contract import TapEvent
from warmcard.timestamps import format_ts

_SEEN_COLUMNS = ("device", "seq", "event_id", "digest", "ts_us", "first_us", "shape")
CONFLICTS = table(
    "conflicts",
    *map(column, ("id", "received_us", "device", "seq", "event_id", "ts_us", "rule")),
    *map(column, ("first_seq", "first_event_id", "first_ts_us")),
)
SEEN = table("seen", *map(column, ("id", *_SEEN_COLUMNS)))
LOOKUP_CHUNK = 500  # event ids per lookup
PRUNE_EVERY_US = 3600 * 1_000_000
PRUNE_CHUNK = 50_000

Row = tuple[str, int, bytes, bytes, int, int, bytes]


_INSERT = text(
    f"INSERT INTO seen ({', '.join(_SEEN_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _SEEN_COLUMNS)}) ON CONFLICT DO NOTHING"
)


Stored = tuple[bytes, bytes, int, bytes | None]  # event_id, digest, ts_us, shape


def _stored(
    conn: Connection, rows: Sequence[Row]
) -> tuple[dict[tuple[str, int], Stored], dict[bytes, tuple[int, int]]]:
    """What the index holds for these rows: one query by event id per chunk (a redelivery is
    found so, by the unique index), then one by (device, seq) per row still unmatched (a
    conflict: rare)."""
    c = SEEN.c
    columns = (c.device, c.seq, c.event_id, c.digest, c.ts_us, c.shape)
    by_key: dict[tuple[str, int], Stored] = {}
    by_id: dict[bytes, tuple[int, int]] = {}

    def keep(found: Iterable[Any]) -> None:
        for d, q, eid, digest, ts, shape in found:
            by_key[(d, int(q))] = (bytes(eid), bytes(digest), int(ts), _bytes(shape))
            by_id[bytes(eid)] = (int(q), int(ts))

    for start in range(0, len(rows), LOOKUP_CHUNK):
        ids = [r[2] for r in rows[start : start + LOOKUP_CHUNK]]
        keep(conn.execute(select(*columns).where(c.event_id.in_(ids))))
    for device, seq, *_ in rows:
        if (device, seq) not in by_key:
            keep(conn.execute(select(*columns).where(c.device == device, c.seq == seq)))
    return by_key, by_id


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


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


def _compare(
    row: Row,
    by_key: dict[tuple[str, int], Stored],
    by_id: dict[bytes, tuple[int, int]],
    *,
    erased: bool = False,
) -> tuple[str, int, bytes, int] | None:
    """None when the stored row says the same; else (rule, first seq, first id, first ts).

    `erased`: the event's ids are an erasure's token (the kiosk pseudonymised it, v1.3); it is
    the same event when all but the ids are (its shape; for a row from before v1.3, its id and
    time), and the first digest is kept.
    """
    device, seq, eid, digest, ts, _, shape = row
    stored = by_key.get((device, seq))
    if stored is not None:
        first_eid, first_digest, first_ts, first_shape = stored
        if first_digest == digest:
            return None
        if erased and (
            first_shape == shape if first_shape is not None else first_eid == eid and first_ts == ts
        ):
            return None
        return "seq", seq, first_eid, first_ts
    other = by_id.get(eid)
    if other is None:  # unreachable: ON CONFLICT skipped it for one of the two keys
        return None
    return "event_id", other[0], eid, other[1]


class SeenIndex:
    """The conflict index of every worker (PostgreSQL) or of the host's workers (one SQLite
    file); thread-safe, one transaction per `admit`."""

    def __init__(self, location: Path | str, *, retention_days: float = 60.0) -> None:
        self.db = Database(location, "conflicts")
        self.retention_us = int(retention_days * 86400 * 1_000_000)
        self._next_prune_us = 0

    def close(self) -> None:
        self.db.close()

    def admit(
        self, events: Sequence[TapEvent], now_us: int, ts_us: Sequence[int] | None = None
    ) -> dict[int, Conflict]:
        """Record the batch's events; returns {index in `events`: Conflict} for refused ones.

        `ts_us`: the events' times in µs if the caller has them (saves parsing them again).
        """
        if ts_us is None:
            ts_us = [event.ts_us for event in events]
        rows: list[Row] = [
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
        if rows:
            with self.db.write() as conn:
                if insert_many(conn, _INSERT, _SEEN_COLUMNS, rows) != len(rows):
                    # Some rows were there (a redelivery, or a conflict): compare each one.
                    by_key, by_id = _stored(conn, rows)
                    for pos, row in zip(positions, rows, strict=True):
                        found = _compare(row, by_key, by_id, erased=events[pos].erased)
                        if found is not None:
                            rule, first_seq, first_eid, first_ts = found
                            conflicts[pos] = self._conflict(
                                now_us, events[pos], rule, first_seq, first_eid, first_ts
                            )
                if conflicts:
                    self._record(conn, events, conflicts)
        if now_us >= self._next_prune_us:
            self._next_prune_us = now_us + PRUNE_EVERY_US
            self.prune(now_us)
        return conflicts

    def _within_batch(
        self, events: Sequence[TapEvent], rows: list[Row], now_us: int
    ) -> tuple[list[Row], list[int], dict[int, Conflict]]:
        """A batch that names a (device, seq) or event_id twice: the first copy is written, an
        identical later one passes, a different one is a conflict. (rows, their positions in
        `events`, conflicts)."""
        kept: list[Row] = []
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

    @staticmethod
    def _record(
        conn: Connection, events: Sequence[TapEvent], conflicts: dict[int, Conflict]
    ) -> None:
        conn.execute(
            text(
                "INSERT INTO conflicts (received_us, device, seq, event_id, ts_us, rule, "
                "first_seq, first_event_id, first_ts_us, digest) VALUES (:received_us, "
                ":device, :seq, :event_id, :ts_us, :rule, :first_seq, :first_event_id, "
                ":first_ts_us, :digest) ON CONFLICT DO NOTHING"
            ),
            [
                {
                    "received_us": c.received_us,
                    "device": c.device_id,
                    "seq": c.seq,
                    "event_id": c.event_id,
                    "ts_us": c.ts_us,
                    "rule": c.rule,
                    "first_seq": c.first_seq,
                    "first_event_id": c.first_event_id,
                    "first_ts_us": c.first_ts_us,
                    "digest": content_digest(events[i]),
                }
                for i, c in conflicts.items()
            ],
        )

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
        with self.db.write() as conn:
            lo_hi = conn.execute(text("SELECT min(id), max(id) FROM seen")).one()
            deleted = 0
            if lo_hi[0] is not None:
                # Ids grow with first_us (rows are appended as they arrive): binary search the
                # first id to keep instead of indexing first_us, which every insert would pay.
                lo, hi = int(lo_hi[0]), int(lo_hi[1]) + 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    row = conn.execute(
                        text("SELECT id, first_us FROM seen WHERE id >= :mid ORDER BY id LIMIT 1"),
                        {"mid": mid},
                    ).first()
                    if row is not None and int(row[1]) < cutoff:
                        lo = int(row[0]) + 1
                    else:
                        hi = mid
                first_kept = min(lo, int(lo_hi[0]) + PRUNE_CHUNK)
                deleted = conn.execute(
                    text("DELETE FROM seen WHERE id < :first"), {"first": first_kept}
                ).rowcount
            conn.execute(
                text("DELETE FROM conflicts WHERE received_us < :cutoff"), {"cutoff": cutoff}
            )
        return deleted

    def conflicts(
        self,
        device_id: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        limit: int = 1000,
    ) -> list[Conflict]:
        """Recorded conflicts, by the conflicting event's time; newest first."""
        c = CONFLICTS.c
        query = select(CONFLICTS)
        if device_id is not None:
            query = query.where(c.device == device_id)
        if start_us is not None:
            query = query.where(c.ts_us >= start_us)
        if end_us is not None:
            query = query.where(c.ts_us < end_us)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(c.id.desc()).limit(limit)).all()
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
        with self.db.read() as conn:
            return int(conn.execute(text("SELECT count(*) FROM seen")).scalar_one())
