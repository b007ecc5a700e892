"""Each store's schema history, applied by Alembic when the store opens (`Database(...)`).

One folder per store (registry, console, alerts, deadletters, conflicts), each its own history
with its own version table (`alembic_version_<store>`), so a PostgreSQL database can hold every
store while on one machine each keeps its own SQLite file. A new change is a new file in the
store's `versions/`, `down_revision` naming the last one; the revision files use only Alembic's
operations, so they run the same on both engines.

The first revision of each store creates what the store's code created before Alembic, with
`if_not_exists`, so a file made by an earlier release is adopted as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from cloud_ingest.db import Database

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def config(store: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / store))
    cfg.set_main_option("version_table", f"alembic_version_{store}")
    return cfg


def upgrade(database: Database) -> None:
    """Bring the store's schema to the newest revision; two processes opening a store at once
    take turns (the store's write lock), and the second finds nothing to do."""
    cfg = config(database.store)
    before = current(database)
    with database.write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    after = current(database)
    if after != before:
        log.info("%s store: schema %s -> %s", database.store, before or "(new)", after)


def head(store: str) -> str:
    """The newest revision of the store's history, the one `upgrade` brings it to."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(config(store)).get_current_head()
    assert revision is not None, store
    return revision


def current(database: Database) -> str | None:
    """The revision the store is at (None before the first)."""
    from alembic.runtime.migration import MigrationContext

    with database.read() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": f"alembic_version_{database.store}"}
        )
        return ctx.get_current_revision()


def run_env(context: Any) -> None:
    """The body of every store's env.py: run on the connection `upgrade` passed in."""
    cfg = context.config
    context.configure(
        connection=cfg.attributes["connection"],
        version_table=cfg.get_main_option("version_table"),
        render_as_batch=True,  # SQLite alters a table by copying it
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
