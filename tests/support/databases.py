"""The type of the `store_at` fixture (tests/conftest.py): where a store lives on the backend
under test, an SQLite file or the URL of the test's PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from cloud_ingest.db import Database
from warmcard.command.servers.postgres import PostgreSQL

StoreAt = Callable[[str], Path | str]


def stored_bytes(db: Database, tables: list[str], postgres: PostgreSQL | None) -> bytes:
    """What the store's files hold: the SQLite file and its WAL, or (after a checkpoint wrote
    the pages out) the PostgreSQL files of `tables` and their indexes."""
    if db.path is not None:
        return b"".join(p.read_bytes() for p in db.path.parent.glob(db.path.name + "*"))
    assert postgres is not None, "give the postgres fixture"
    files: list[str] = []
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CHECKPOINT")
        for table in tables:
            files.append(
                conn.execute(text("SELECT pg_relation_filepath(:t)"), {"t": table}).scalar_one()
            )
            files += conn.execute(
                text(
                    "SELECT pg_relation_filepath(indexrelid) FROM pg_index "
                    "WHERE indrelid = CAST(:t AS regclass)"
                ),
                {"t": table},
            ).scalars()
    return b"".join((postgres.data_dir / f).read_bytes() for f in files)
