"""The console's store: areas, users, grants, sessions, login failures, subsidy rates and the
audit log, in one database every console process and command shares (SQLite file or PostgreSQL;
cloud_ingest.db). Its schema is the console history in cloud_ingest/migrations/console/."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.db import Database

Location = Path | str | Database
"""Where the console store is: an SQLite path, a database URL, or a `Database` already open."""


def open_store(location: Location) -> Database:
    """The console store at `location`, its schema brought up to date; an open `Database` is used
    as it is (one engine per process, shared by the accounts, the audit log and the areas)."""
    if isinstance(location, Database):
        return location
    return Database(location, "console")
