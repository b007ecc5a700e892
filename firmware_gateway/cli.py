"""Commands of this package, added to `warmcard` by warmcard.cli."""

from __future__ import annotations

import typer

from firmware_gateway import doctor


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `warmcard` app."""
    doctor.register(app)
