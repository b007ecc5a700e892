"""The console's SQLite file: open a connection with the right pragmas and create its tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_ingest import db
from cloud_ingest.console import accounts, hand_meals, subsidy
from cloud_ingest.registry import areas


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) the console database; one connection per thread or request."""
    conn = db.connect(path)
    init_schema(conn)
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the areas, accounts, subsidy rates and hand-recorded meals tables if missing."""
    areas.init_schema(conn)
    accounts.init_schema(conn)
    subsidy.init_schema(conn)
    hand_meals.init_schema(conn)
