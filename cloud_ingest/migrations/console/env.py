"""Alembic environment of the console store (cloud_ingest.migrations)."""

from alembic import context

from cloud_ingest.migrations import run_env

run_env(context)
