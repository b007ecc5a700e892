"""The multi-machine deployment's files (deploy/multi-machine, deploy/postgresql) do what
docs/operations.md ("Several machines") says: the configs load, and setup.sql makes a role that
can run every store's migrations in its own database and nothing more."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from cloud_ingest.db import STORES, Database
from cloud_ingest.settings import IngestSettings
from tests.support.paths import REPO
from warmcard.command.servers.postgres import PostgreSQL, _bin

DEPLOY = REPO / "deploy"


@pytest.mark.parametrize("name", ["worker.toml", "console.toml"])
def test_the_multi_machine_configs_load_and_put_every_store_in_postgresql(name: str) -> None:
    settings = IngestSettings.load(DEPLOY / "multi-machine" / name)
    url = settings.database.url
    assert url is not None and url.startswith("postgresql+psycopg://warmcard@db.internal")
    assert {settings.store(s) for s in STORES} == {url}


def test_the_one_machine_config_keeps_every_store_in_its_own_sqlite_file() -> None:
    settings = IngestSettings.load(REPO / "cloud_ingest" / "ingest.example.toml")
    assert settings.database.url is None
    files = [settings.store(s) for s in STORES]
    assert all(isinstance(f, Path) and f.suffix == ".sqlite3" for f in files)
    assert len(set(files)) == len(STORES)


def test_setup_sql_makes_a_role_that_runs_every_migration_and_nothing_more(
    postgres: PostgreSQL,
) -> None:
    password = secrets.token_hex(12)
    result = subprocess.run(
        [
            _bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres.port),
            "-U",
            postgres.user,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"password='{password}'",
            "-f",
            str(DEPLOY / "postgresql" / "setup.sql"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    url = f"postgresql+psycopg://warmcard:{password}@127.0.0.1:{postgres.port}/warmcard"
    for store in STORES:
        Database(url, store).close()  # each store's migrations, as the service role
    db = Database(url, "console", migrate=False)
    try:
        with db.read() as conn:
            tables = set(
                conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
            )
        assert {"sites", "users", "alerts", "dead_letters", "seen", "audit_log"} <= tables
        with pytest.raises(ProgrammingError, match="permission denied"), db.write() as conn:
            conn.execute(text("CREATE ROLE another"))
    finally:
        db.close()
