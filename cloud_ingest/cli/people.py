"""`warmcard person erase`: a person's personal data out of every store (docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloud_ingest.cli.audit import record
from cloud_ingest.console.audit import Action, ObjectKind
from cloud_ingest.errors import IngestError

person_app = typer.Typer(help="人员 People: erase a person's personal data (PIPL).")


@person_app.command("erase")
def erase(
    person_id: Annotated[str, typer.Argument(help="the person's id, e.g. P0007")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest.toml")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Remove a person from the registry, alerts and dead letters; pseudonymise their taps."""
    from cloud_ingest.alerts.store import AlertStore
    from cloud_ingest.cli.config import load_settings
    from cloud_ingest.console.erasure import erase_person
    from cloud_ingest.console.kiosk_erasure import KioskErasures
    from cloud_ingest.pipeline.deadletter import DeadLetterStore
    from cloud_ingest.pipeline.influx import InfluxV1
    from cloud_ingest.registry.store import Registry

    settings = load_settings(config)
    if not yes and not typer.confirm(f"删除 {person_id} 的全部个人信息? Erase {person_id}?"):
        raise typer.Exit(1)
    registry = Registry(settings.store("registry"))
    storage = InfluxV1(settings.influx)
    alerts = AlertStore(settings.store("alerts"))
    deadletters = DeadLetterStore(settings.store("deadletters"))
    kiosks = KioskErasures(settings.store("console"))
    try:
        done = erase_person(
            person_id,
            registry=registry,
            storage=storage,
            alerts=alerts,
            deadletters=deadletters,
            kiosks=kiosks,
        )
    except IngestError as exc:
        typer.echo(f"错误 error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        for store in (registry, storage, alerts, deadletters, kiosks):
            store.close()
    counts = done.counts()
    record(settings.store("console"), Action.ERASE, ObjectKind.PERSON, person_id, **counts)
    typer.echo(f"已删除 erased {person_id}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(person_app, name="person")
