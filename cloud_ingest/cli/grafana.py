"""`warmcard grafana areas`: publish the area hierarchy the Grafana dashboard's variables read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloud_ingest.cli.config import load_settings
from cloud_ingest.errors import IngestError


def register(app: typer.Typer) -> None:
    """Add `warmcard grafana ...`."""
    group = typer.Typer(help="Grafana: what deploy/grafana/warmcard.json reads besides the taps.")
    app.add_typer(group, name="grafana")

    @group.command("areas")
    def areas_command(
        config: Annotated[Path, typer.Option("--config", "-c", help="ingest.toml")],
    ) -> None:
        """Write each site's county and township to InfluxDB (`site_areas`); run after an area
        import."""
        from cloud_ingest.console import db as console_db
        from cloud_ingest.ops.grafana_areas import publish_areas
        from cloud_ingest.pipeline.influx import InfluxV1
        from warmcard.timestamps import now_us

        settings = load_settings(config)
        console = console_db.open_store(settings.store("console"))
        storage = InfluxV1(settings.influx)
        try:
            sites = publish_areas(console, storage, now_us())
        except IngestError as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            storage.close()
            console.close()
        typer.echo(f"已发布 published the places of {sites} site(s) to {settings.influx.database}")
