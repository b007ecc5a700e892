"""The audit log: who viewed, searched, exported, changed, enrolled or erased what, when, where.

Append-only and tamper-evident. Each row stores

    hash = sha256(previous row's hash + this row's canonical JSON)

(the first row's previous hash is 64 zeros), so changing, removing or inserting any row breaks
every hash after it; `verify` recomputes the chain and names the first row that does not match.
Triggers (in the console store's baseline revision, on SQLite and PostgreSQL alike) refuse UPDATE
and DELETE, so the console and the commands cannot rewrite it by mistake; someone with the file or
the database owner's password can, and `warmcard audit verify` then says where.

Rows hold ids, never names or the text of a search (a name typed into a search is personal data
of whoever it names, and this log is kept longer than any other store and never erased).

Storage: one table in the console store, shared by every console process and the commands.
Everything that touches SQL is in `AuditLog`; the chain is computed here, not by the database, and
appended in the store's write transaction, the only writer on either engine, so rows from several
processes or machines never fork it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import text

from cloud_ingest.console.db import Location, open_store
from warmcard.timestamps import now_us

GENESIS = "0" * 64


class Action(StrEnum):
    VIEW = "view"
    SEARCH = "search"
    EXPORT = "export"
    CREATE = "create"
    EDIT = "edit"
    ENROL = "enrol"
    ERASE = "erase"
    ACCOUNT = "account"


class ObjectKind(StrEnum):
    PERSON = "person"
    CARD = "card"
    SITE = "site"
    DEVICE = "device"
    ACCOUNT = "account"
    REPORT = "report"
    VISIT = "visit"
    AUDIT = "audit"


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before the log gives it a number, a time and a hash."""

    username: str
    action: Action
    object_kind: ObjectKind
    object_id: str
    detail: dict[str, Any]
    client: str = ""
    status: int = 0


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at_us: int
    username: str
    action: str
    object_kind: str
    object_id: str
    detail: str
    client: str
    status: int
    prev_hash: str
    hash: str

    def canonical(self) -> str:
        """The row's content as hashed (everything but the hashes): sorted keys, no spaces."""
        content = dataclasses.asdict(self)
        del content["prev_hash"], content["hash"]
        return canonical_json(content)


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditFilter:
    username: str = ""
    action: str = ""
    object_kind: str = ""
    object_id: str = ""
    since_us: int | None = None
    until_us: int | None = None

    def where(self) -> tuple[str, dict[str, object]]:
        """The SQL condition (fixed fragments, never the values) and its named parameters."""
        clauses: list[str] = []
        params: dict[str, object] = {}
        for column, value in (
            ("username", self.username),
            ("action", self.action),
            ("object_kind", self.object_kind),
            ("object_id", self.object_id),
        ):
            if value:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        if self.since_us is not None:
            clauses.append("at_us >= :since_us")
            params["since_us"] = self.since_us
        if self.until_us is not None:
            clauses.append("at_us < :until_us")
            params["until_us"] = self.until_us
        return " AND ".join(clauses) or "1 = 1", params


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: rows checked, the first broken row (None: intact), the head."""

    rows: int
    broken_seq: int | None
    reason: str
    head: str

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


_COLUMNS = (
    "seq, at_us, username, action, object_kind, object_id, detail, client, status, prev_hash, hash"
)


_INSERT = text(
    "INSERT INTO audit_log (seq, at_us, username, action, object_kind, object_id, detail, client,"
    " status, prev_hash, hash) VALUES (:seq, :at_us, :username, :action, :object_kind,"
    " :object_id, :detail, :client, :status, :prev_hash, :hash)"
)


class AuditLog:
    """The log in the console store; thread-safe, several processes and machines may append."""

    def __init__(self, console: Location, *, clock: Callable[[], int] = now_us) -> None:
        self.db = open_store(console)
        self._owned = self.db is not console
        self.clock = clock

    def close(self) -> None:
        """Close the store if this log opened it (a `Database` passed in stays open)."""
        if self._owned:
            self.db.close()

    def append(self, event: AuditEvent) -> AuditRow:
        """Add one row, chained to the last; the store's write transaction orders the writers
        of every process."""
        with self.db.write() as conn:
            last = conn.execute(
                text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            ).first()
            seq, prev = (int(last.seq) + 1, last.hash) if last else (1, GENESIS)
            draft = AuditRow(
                seq,
                self.clock(),
                event.username,
                event.action.value,
                event.object_kind.value,
                event.object_id,
                canonical_json(event.detail),
                event.client,
                event.status,
                prev,
                "",
            )
            row = dataclasses.replace(draft, hash=chain_hash(prev, draft.canonical()))
            conn.execute(_INSERT, dataclasses.asdict(row))
        return row

    def _read(self, sql: str, params: dict[str, object]) -> list[AuditRow]:
        with self.db.read() as conn:
            return [AuditRow(*r) for r in conn.execute(text(sql), params)]

    def find(
        self, where: AuditFilter, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[AuditRow], int]:
        """One page of rows, newest first, and how many match."""
        clause, params = where.where()
        with self.db.read() as conn:
            total = int(
                conn.execute(
                    text(f"SELECT count(*) FROM audit_log WHERE {clause}"), params
                ).scalar_one()
            )
            rows = conn.execute(
                text(
                    f"SELECT {_COLUMNS} FROM audit_log WHERE {clause}"
                    " ORDER BY seq DESC LIMIT :limit OFFSET :offset"
                ),
                params | {"limit": limit, "offset": offset},
            )
            return [AuditRow(*r) for r in rows], total

    def rows(self, where: AuditFilter = AuditFilter(), batch: int = 1000) -> Iterator[AuditRow]:
        """Every matching row, oldest first, read in batches."""
        clause, params = where.where()
        after = 0
        while True:
            chunk = self._read(
                f"SELECT {_COLUMNS} FROM audit_log WHERE {clause} AND seq > :after"
                " ORDER BY seq LIMIT :batch",
                params | {"after": after, "batch": batch},
            )
            if not chunk:
                return
            yield from chunk
            after = chunk[-1].seq

    def prune(self, before_us: int) -> int:
        """Retention: delete the rows older than `before_us` (oldest first, never a gap), after
        recording a checkpoint with the last one's hash. Returns how many went."""
        with self.db.write() as conn:
            last = conn.execute(
                text(
                    "SELECT seq, hash FROM audit_log WHERE seq = "
                    "(SELECT max(seq) FROM audit_log WHERE at_us < :before)"
                ),
                {"before": before_us},
            ).first()
            if last is None:
                return 0
            conn.execute(
                text("INSERT INTO audit_checkpoint (seq, hash, at_us) VALUES (:seq, :hash, :at)"),
                {"seq": last.seq, "hash": last.hash, "at": self.clock()},
            )
            gone: int = conn.execute(
                text("DELETE FROM audit_log WHERE seq <= :seq"), {"seq": last.seq}
            ).rowcount
        return gone

    def verify(self) -> Verdict:
        """Recompute the chain from the first row (or the last retention checkpoint); the first
        row that does not match is named."""
        prev, count, expected_seq = GENESIS, 0, 1
        with self.db.read() as conn:
            checkpoint = conn.execute(
                text("SELECT seq, hash FROM audit_checkpoint ORDER BY seq DESC LIMIT 1")
            ).first()
        if checkpoint:
            expected_seq, prev = int(checkpoint.seq) + 1, checkpoint.hash
        for row in self.rows():
            count += 1
            if row.seq != expected_seq:
                return Verdict(count, row.seq, f"row {expected_seq} is missing", prev)
            if row.prev_hash != prev:
                return Verdict(count, row.seq, "its previous hash does not match", prev)
            if chain_hash(prev, row.canonical()) != row.hash:
                return Verdict(count, row.seq, "its content does not match its hash", prev)
            prev, expected_seq = row.hash, expected_seq + 1
        return Verdict(count, None, "", prev)
