"""The cloud's `warmcard` commands; each command body calls the module that does the work."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add every cloud command to the `warmcard` app."""
    from cloud_ingest.cli import (
        alerts,
        audit,
        backup,
        console,
        deadletters,
        grafana,
        ingest,
        people,
        reconcile,
    )

    for part in (ingest, reconcile, deadletters, alerts, console, audit, people, backup, grafana):
        part.register(app)
