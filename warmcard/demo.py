"""`warmcard demo`: the whole pipeline on real servers with simulated kiosks and a live page."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the demo command."""
