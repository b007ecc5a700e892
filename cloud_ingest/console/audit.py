"""The audit log: who viewed, searched, exported, changed, enrolled or erased what, when, where.

Append-only and tamper-evident. Each row stores

    hash = sha256(previous row's hash + this row's canonical JSON)

(the first row's previous hash is 64 zeros), so changing, removing or inserting any row breaks
every hash after it; `verify` recomputes the chain and names the first row that does not match.
SQLite triggers refuse UPDATE and DELETE, so the console and the commands cannot rewrite it by
mistake; someone with the file can, and `warmcard audit verify` then says where.

Rows hold ids, never names or the text of a search (a name typed into a search is personal data
of whoever it names, and this log is kept longer than any other store and never erased).

Storage: one table in the console's database, shared by every console process and the commands.
Everything that touches SQL is in `AuditLog`; moving to PostgreSQL replaces that class only (the
chain is computed here, not by the database).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cloud_ingest import db
from warmcard.timestamps import now_us

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq         INTEGER PRIMARY KEY,
    at_us       INTEGER NOT NULL,           -- UTC µs
    username    TEXT NOT NULL,              -- console user, or `cli:<os user>` for a command
    action      TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}', -- canonical JSON: counts, fields changed; no names
    client      TEXT NOT NULL DEFAULT '',   -- the client's address, or `cli`
    status      INTEGER NOT NULL,           -- the HTTP status answered (0: a command)
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (username, seq);
CREATE INDEX IF NOT EXISTS audit_log_object ON audit_log (object_kind, object_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- Retention: the oldest rows may go only once a checkpoint holds the hash of the last one gone,
-- so verify still checks the chain from there. Checkpoints themselves are append-only.
CREATE TABLE IF NOT EXISTS audit_checkpoint (
    seq     INTEGER PRIMARY KEY,                -- the last row pruned
    hash    TEXT NOT NULL,                      -- its hash: where the remaining chain starts
    at_us   INTEGER NOT NULL                    -- when it was pruned
);
DROP TRIGGER IF EXISTS audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > (SELECT coalesce(max(seq), 0) FROM audit_checkpoint)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
"""


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
    MEAL = "meal"  # a meal recorded by hand in the console (补录)
    SUBSIDY = "subsidy"  # a county's subsidy rates


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

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("username", self.username),
            ("action", self.action),
            ("object_kind", self.object_kind),
            ("object_id", self.object_id),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since_us is not None:
            clauses.append("at_us >= ?")
            params.append(self.since_us)
        if self.until_us is not None:
            clauses.append("at_us < ?")
            params.append(self.until_us)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


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


class AuditLog:
    """The log in one SQLite file (the console's); thread-safe, several processes may append."""

    def __init__(self, path: Path | str, *, clock: Callable[[], int] = now_us) -> None:
        self.path = Path(path)
        self.clock = clock
        self._conn = db.connect(path, autocommit=True, shared=True)
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, event: AuditEvent) -> AuditRow:
        """Add one row, chained to the last; BEGIN IMMEDIATE orders writers of every process."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
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
                conn.execute(
                    f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    dataclasses.astuple(row),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return row

    def _read(self, sql: str, params: list[object] | tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def find(
        self, where: AuditFilter, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[AuditRow], int]:
        """One page of rows, newest first, and how many match."""
        clause, params = where.where()
        total = int(self._read(f"SELECT count(*) FROM audit_log{clause}", params)[0][0])
        rows = self._read(
            f"SELECT {_COLUMNS} FROM audit_log{clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [AuditRow(*r) for r in rows], total

    def rows(self, where: AuditFilter = AuditFilter(), batch: int = 1000) -> Iterator[AuditRow]:
        """Every matching row, oldest first, read in batches."""
        clause, params = where.where()
        after = 0
        joiner = " AND " if clause else " WHERE "
        while True:
            chunk = self._read(
                f"SELECT {_COLUMNS} FROM audit_log{clause}{joiner}seq > ? ORDER BY seq LIMIT ?",
                [*params, after, batch],
            )
            if not chunk:
                return
            for values in chunk:
                yield AuditRow(*values)
            after = chunk[-1][0]

    def prune(self, before_us: int) -> int:
        """Retention: delete the rows older than `before_us` (oldest first, never a gap), after
        recording a checkpoint with the last one's hash. Returns how many went."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute(
                    "SELECT seq, hash FROM audit_log WHERE seq = "
                    "(SELECT max(seq) FROM audit_log WHERE at_us < ?)",
                    (before_us,),
                ).fetchone()
                gone = 0
                if last is not None:
                    conn.execute(
                        "INSERT INTO audit_checkpoint (seq, hash, at_us) VALUES (?, ?, ?)",
                        (last[0], last[1], self.clock()),
                    )
                    gone = conn.execute("DELETE FROM audit_log WHERE seq <= ?", (last[0],)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return gone

    def verify(self) -> Verdict:
        """Recompute the chain from the first row (or the last retention checkpoint); the first
        row that does not match is named."""
        prev, count, expected_seq = GENESIS, 0, 1
        checkpoint = self._read("SELECT seq, hash FROM audit_checkpoint ORDER BY seq DESC LIMIT 1")
        if checkpoint:
            expected_seq, prev = checkpoint[0][0] + 1, checkpoint[0][1]
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


def is_append_only(conn: sqlite3.Connection) -> bool:
    """True while both triggers that refuse UPDATE and DELETE are in place."""
    names = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        )
    }
    return {"audit_log_no_update", "audit_log_no_delete"} <= names
