"""Open the cloud's stores, every one the same way: SQLite files on one machine, PostgreSQL when
several machines share them (docs/architecture.md, "One machine or several").

Every store reaches its database through SQLAlchemy Core: one code path, the same SQL on both
engines (`text()` with named parameters, in the subset both speak: `ON CONFLICT`, `RETURNING`,
partial indexes). The two things that differ live here and nowhere else:

- **Serialised writers.** A store's `write()` transaction is the only writer of that store while
  it runs, on both engines: `BEGIN IMMEDIATE` on SQLite (the file's write lock), a
  transaction-scoped advisory lock named after the store on PostgreSQL. Counting login attempts,
  bumping the registry's version and chaining the audit log rely on it.
- **The house pragmas on SQLite.** WAL lets pages read while an import, a login or a batch writes;
  foreign keys make a deleted user take its grants and sessions with it; the busy timeout lets
  several processes on one host share a file. `synchronous` is the one choice a store makes: FULL
  where a row must survive a power cut the moment it is written (dead letters), NORMAL elsewhere.
- **Scrubbing erased rows.** `scrub(tables)` after an erasure commits: what the deletes freed is
  rewritten away, by `VACUUM` and a truncating WAL checkpoint on SQLite, `VACUUM FULL` of the
  tables on PostgreSQL.

Schemas are made and changed by Alembic (cloud_ingest/migrations/), one history per store.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, TextClause, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_S = 10.0
# Alembic says at INFO which plugins it set up (on its import) and that DDL is transactional,
# every time a store opens (every `warmcard user …` command): only its warnings pass;
# migrations.upgrade says what changed.
logging.getLogger("alembic").setLevel(logging.WARNING)
Store = Literal["registry", "console", "alerts", "deadletters", "conflicts"]
STORES: tuple[Store, ...] = ("registry", "console", "alerts", "deadletters", "conflicts")
# What a store raises when its database cannot do the work now: PostgreSQL down or restarting,
# the connection cut, an SQLite file locked past the busy timeout or its disk full. Whoever
# holds data waits and tries again; nothing is dropped for it.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


def is_url(location: Path | str) -> bool:
    """A database URL (`postgresql+psycopg://…`, `sqlite:///…`) rather than a file path."""
    return isinstance(location, str) and "://" in location


def url_of(location: Path | str) -> str:
    """The SQLAlchemy URL of a store: a URL as given, a path as an SQLite file."""
    if is_url(location):
        return str(location)
    if str(location) == ":memory:":
        return "sqlite+pysqlite://"
    return f"sqlite+pysqlite:///{Path(location)}"


class Database:
    """One store's database. Thread-safe: each `read()`/`write()` takes its own pooled
    connection."""

    def __init__(
        self,
        location: Path | str,
        store: Store,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        migrate: bool = True,
    ) -> None:
        self.store = store
        self.url = make_url(url_of(location))
        self.location = location
        self.engine = _engine(self.url.render_as_string(hide_password=False), synchronous)
        self._lock_key = int.from_bytes(hashlib.sha256(store.encode()).digest()[:4], "big")
        if migrate:
            from cloud_ingest.migrations import upgrade

            upgrade(self)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None on a server."""
        return Path(self.url.database) if self.dialect == "sqlite" and self.url.database else None

    def describe(self) -> str:
        """Where the store is, for messages (no password)."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction: every statement sees the same committed state."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, the store's only writer while it runs; committed at the end,
        rolled back on any error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(warmcard_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._lock_key})
                yield conn

    def scrub(self, tables: Iterable[str]) -> None:
        """After rows naming a person were deleted (and committed): leave nothing of them in the
        database's files. A delete only marks space free; here it is rewritten away.

        SQLite: `VACUUM` rebuilds the whole file from its live rows (`tables` are all of it), then
        a truncating checkpoint empties the WAL, which held the deleted rows' old pages.
        PostgreSQL: `VACUUM FULL` of `tables` writes them and their indexes anew without the dead
        rows (a plain VACUUM only marks the space reusable, the bytes stay in the pages); each
        table is locked while it is rewritten, a moment for these small tables.
        """
        names = sorted(set(tables))
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            if self.dialect == "sqlite":
                assert isinstance(raw, sqlite3.Connection)
                raw.execute("VACUUM")
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return
            quote = self.engine.dialect.identifier_preparer.quote
            autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            for name in names:
                autocommit.exec_driver_sql(f"VACUUM FULL {quote(name)}")

    def close(self) -> None:
        self.engine.dispose()


def insert_many(
    conn: Connection, statement: TextClause, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """`statement` (named parameters `columns`) once per row, in one driver `executemany`;
    returns the rows it changed. For the ingest hot path: the text SQLAlchemy compiles for the
    connection's dialect (the same statement on both engines) goes to the driver with the rows
    as its parameter style wants them, without SQLAlchemy's per-row parameter processing
    (a third of the conflict index's cost on SQLite)."""
    compiled = statement.compile(dialect=conn.dialect)
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup or ()]
        params: list[Any] = [tuple(row[i] for i in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    return int(conn.exec_driver_sql(compiled.string, params).rowcount)


def _engine(url: str, synchronous: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    memory = not parsed.database or parsed.database == ":memory:"
    if not memory:
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        **({"poolclass": StaticPool} if memory else {"pool_size": 8, "max_overflow": 16}),
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" below says when a txn starts
        if not memory:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("warmcard_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
