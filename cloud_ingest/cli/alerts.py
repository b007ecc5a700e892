"""`warmcard flags ...`: well-being flags (独居 lives alone, 困境儿童 child in difficulty)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

flags_app = typer.Typer(help="关爱标记 Well-being flags: import, list.")

ConfigOption = typer.Option("--config", "-c", help="ingest.toml (registry, alerts database)")


def _open(config: Path | None):  # type: ignore[no-untyped-def]
    from cloud_ingest.alerts.store import AlertStore
    from cloud_ingest.registry.store import Registry
    from cloud_ingest.settings import IngestSettings
    from warmcard.settings import SettingsError

    try:
        settings = IngestSettings.load(config)
    except SettingsError as exc:
        typer.echo(f"配置错误 Config error: {exc}", err=True)
        raise typer.Exit(2) from None
    db = settings.alerts.db_path or settings.registry_path.with_name("alerts.sqlite3")
    return settings, Registry(settings.store("registry")), AlertStore.open(db)


@flags_app.command("import")
def flags_import(
    file: Annotated[Path, typer.Argument(help="CSV: person_id,flag[,active]")],
    config: Annotated[Path | None, ConfigOption] = None,
) -> None:
    """Set (active=1, the default) or remove (active=0) flags; all rows or none."""
    from cloud_ingest.alerts.wellbeing import read_flags_csv
    from cloud_ingest.errors import FlagImportError
    from warmcard.timestamps import now_us

    settings, registry, store = _open(config)
    try:
        rows = read_flags_csv(file, settings.alerts.flags, registry)
        added, removed = store.set_flags(rows, now_us())
    except FlagImportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        registry.close()
        store.close()
    typer.echo(f"已导入 imported: {added} flag(s) set, {removed} removed")


@flags_app.command("list")
def flags_list(config: Annotated[Path | None, ConfigOption] = None) -> None:
    """Every flagged person, one flag per line."""
    from cloud_ingest.alerts.wellbeing import flag_name

    _, registry, store = _open(config)
    try:
        for person, flag, _ in store.flags():
            typer.echo(f"{person}\t{flag}\t{flag_name(flag)}")
    finally:
        registry.close()
        store.close()


def register(app: typer.Typer) -> None:
    """Add the `flags` commands to the `warmcard` app."""
    app.add_typer(flags_app, name="flags")
