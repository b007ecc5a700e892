"""`warmcard backup` and `warmcard restore` of every store ingest.toml names (in ops.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from cloud_ingest.cli.config import load_settings
from cloud_ingest.errors import BackupError

if TYPE_CHECKING:
    from cloud_ingest.ops.backup.stores import Store

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="ingest.toml")]


def _stores(config: Path, influx_database: str | None = None) -> list[Store]:
    from cloud_ingest.db import Store as StoreName
    from cloud_ingest.ops.backup import cloud_stores

    settings = load_settings(config)
    url = settings.database.url
    sqlite_files = {} if url else {n: Path(settings.store(n)) for n in get_args(StoreName)}
    return cloud_stores(
        sqlite_files,
        settings.influx,
        settings.backup,
        influx_database=influx_database,
        database_url=url,
    )


def register(app: typer.Typer) -> None:
    """Add `warmcard backup` and `warmcard restore`."""

    @app.command("backup")
    def backup_command(
        out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder.")],
        config: ConfigOption,
    ) -> None:
        """Back up every store (SQLite or PostgreSQL, InfluxDB, CA, broker files) with a
        checksummed manifest."""
        from cloud_ingest.ops.backup import backup

        try:
            manifest = backup(_stores(config), out)
        except BackupError as exc:
            typer.echo(f"备份失败 backup failed: {exc}", err=True)
            raise typer.Exit(1) from None
        for entry in manifest.stores:
            what = "absent, skipped" if entry.absent else f"{len(entry.files)} file(s)"
            typer.echo(f"{entry.name:<12} {entry.kind:<9} {what}  ({entry.source})")
        typer.echo(f"已备份 backed up to {out}")

    @app.command("restore")
    def restore_command(
        folder: Annotated[Path, typer.Argument(help="A folder made by `warmcard backup`.")],
        config: ConfigOption,
        only: Annotated[
            list[str] | None, typer.Option("--only", help="Restore only this store (repeat).")
        ] = None,
        influx_database: Annotated[
            str | None,
            typer.Option(help="Restore InfluxDB under this database name instead of \\[influx]'s."),
        ] = None,
    ) -> None:
        """Verify a backup, then restore it where ingest.toml says; never overwrites a store."""
        from cloud_ingest.ops.backup import restore

        try:
            restored = restore(_stores(config, influx_database), folder, only)
        except BackupError as exc:
            typer.echo(f"恢复失败 restore failed: {exc}", err=True)
            raise typer.Exit(1) from None
        for entry in restored:
            typer.echo(f"已恢复 restored {entry.name} ({entry.kind}, {len(entry.files)} file(s))")
