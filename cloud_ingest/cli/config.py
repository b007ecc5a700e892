"""Reading ingest.toml for a command: a bad file ends the command with exit code 2 and why."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from warmcard.settings import SettingsError

if TYPE_CHECKING:
    from cloud_ingest.settings import IngestSettings


def load_settings(config: Path | None) -> IngestSettings:
    from cloud_ingest.settings import IngestSettings

    try:
        return IngestSettings.load(config)
    except SettingsError as exc:
        typer.echo(f"配置错误 Config error: {exc}", err=True)
        raise typer.Exit(2) from None
