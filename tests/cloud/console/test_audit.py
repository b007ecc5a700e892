"""The audit log's store on SQLite and PostgreSQL (`store_at`): the chain stays one line when
several writers append at once, filters and pages, append-only triggers, verify naming a row
rewritten behind the triggers' back, retention behind a checkpoint."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from cloud_ingest.cli import audit as audit_cli
from cloud_ingest.console.audit import (
    GENESIS,
    Action,
    AuditEvent,
    AuditFilter,
    AuditLog,
    ObjectKind,
    chain_hash,
)
from tests.support.databases import StoreAt

T0 = 1_790_000_000_000_000


def event(user: str, action: Action = Action.VIEW, person: str = "P0001") -> AuditEvent:
    return AuditEvent(user, action, ObjectKind.PERSON, person, {"n": 1}, "10.0.0.9", 200)


@pytest.fixture
def log(store_at: StoreAt) -> Iterator[AuditLog]:
    clock = iter(range(T0, T0 + 10**9, 1_000_000))
    audit = AuditLog(store_at("console"), clock=lambda: next(clock))
    yield audit
    audit.close()


def test_simultaneous_writers_of_two_processes_keep_one_chain(
    log: AuditLog, store_at: StoreAt
) -> None:
    """Two logs (two engines, as two console processes) and eight threads append at once."""
    other = AuditLog(store_at("console"))
    start = threading.Barrier(8)

    def append(i: int) -> None:
        start.wait()
        for n in range(5):
            (log, other)[i % 2].append(event(f"user{i}", person=f"P{n:04d}"))

    threads = [threading.Thread(target=append, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.close()
    rows = list(log.rows())
    assert [r.seq for r in rows] == list(range(1, 41))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert rows[0].hash == chain_hash(GENESIS, rows[0].canonical())
    verdict = log.verify()
    assert verdict.ok and verdict.rows == 40 and verdict.head == rows[-1].hash


def test_find_filters_and_pages_newest_first(log: AuditLog) -> None:
    for i in range(7):
        log.append(event("alice" if i % 2 else "bob", Action.SEARCH if i == 3 else Action.VIEW))
    page, total = log.find(AuditFilter(username="bob"), limit=2, offset=1)
    assert total == 4 and [r.seq for r in page] == [5, 3]
    only, total = log.find(AuditFilter(username="alice", action="search"))
    assert total == 1 and only[0].seq == 4 and only[0].detail == '{"n":1}'
    window = AuditFilter(since_us=T0 + 2_000_000, until_us=T0 + 4_000_000)
    assert [r.seq for r in log.rows(window, batch=1)] == [3, 4]
    assert log.find(AuditFilter(object_id="P0404"))[1] == 0


def test_the_log_refuses_update_and_delete(log: AuditLog) -> None:
    log.append(event("alice"))
    for statement in (
        "UPDATE audit_log SET username = 'nobody' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(DBAPIError, match="append-only"), log.db.write() as conn:
            conn.execute(text(statement))
    assert [r.username for r in log.rows()] == ["alice"]


def test_verify_names_a_row_rewritten_behind_the_triggers(log: AuditLog) -> None:
    for user in ("alice", "bob", "carol"):
        log.append(event(user))
    # Someone with the database owner's rights turns the trigger off and rewrites row 2.
    with log.db.write() as conn:
        if log.db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET object_id = 'P0009' WHERE seq = 2"))
    verdict = log.verify()
    assert not verdict.ok and verdict.broken_seq == 2
    assert verdict.reason == "its content does not match its hash"


def test_retention_leaves_a_checkpoint_the_chain_starts_from(log: AuditLog) -> None:
    for user in ("alice", "bob", "carol", "dave"):
        log.append(event(user))  # at T0, T0 + 1 s, ...
    assert log.prune(T0 + 2_000_000) == 2
    assert [r.seq for r in log.rows()] == [3, 4]
    verdict = log.verify()
    assert verdict.ok and verdict.rows == 2
    assert log.prune(T0) == 0
    # The rows after the checkpoint and the checkpoint itself are still append-only.
    with pytest.raises(DBAPIError, match="append-only"), log.db.write() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    with pytest.raises(DBAPIError, match="append-only"), log.db.write() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint"))
    log.append(event("erin"))
    assert log.verify().ok and [r.seq for r in log.rows()] == [3, 4, 5]


def test_the_commands_take_the_store_as_a_path_or_a_url(
    log: AuditLog, store_at: StoreAt, tmp_path: Path
) -> None:
    log.append(event("alice"))
    app = typer.Typer()
    audit_cli.register(app)
    where = str(store_at("console"))
    verified = CliRunner().invoke(app, ["audit", "verify", "--db", where])
    assert verified.exit_code == 0, verified.output
    assert "intact: 1 rows" in verified.output
    out = tmp_path / "audit.csv"
    exported = CliRunner().invoke(
        app, ["audit", "export", "--db", where, "--user", "alice", "--out", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    assert out.read_text(encoding="utf-8-sig").count("alice") == 1
    # The export is itself recorded, by the command's user.
    assert [r.username.startswith("cli:") for r in log.rows()] == [False, True]
