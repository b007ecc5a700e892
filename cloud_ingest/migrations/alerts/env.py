"""Alembic environment of the alerts store (cloud_ingest.migrations)."""

from alembic import context

from cloud_ingest.migrations import run_env

run_env(context)
