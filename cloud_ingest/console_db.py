"""The console's SQLite file: open a connection with the right pragmas and create its tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_ingest import accounts, areas


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) the console database; one connection per thread or request."""
    conn = sqlite3.connect(path, timeout=10.0)
    # WAL lets the live pages read while an import or a login writes; foreign keys make a
    # deleted user take its grants and sessions with it.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    init_schema(conn)
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the areas, users, grants, sessions and login_failures tables if missing."""
    areas.init_schema(conn)
    accounts.init_schema(conn)
