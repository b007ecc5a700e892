"""Commands of this package, added to `warmcard` by warmcard.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `warmcard` app."""
    from firmware_gateway.readers.cli import register_reader_commands

    register_reader_commands(app)
