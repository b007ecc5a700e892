"""The `warmcard` command. Each package adds its own commands through its cli module."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(
    name="warmcard",
    help="Warmcard: NFC check-in and meal counting for happiness courtyards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    from cloud_ingest import cli as ingest_cli
    from cloud_ingest import console_cli
    from cloud_ingest.alerts import cli as alerts_cli
    from firmware_gateway import cli as gateway_cli
    from warmcard import demo, provision

    gateway_cli.register(app)
    ingest_cli.register(app)
    console_cli.register(app)
    alerts_cli.register(app)
    demo.register(app)
    provision.register(app)


_register()

if __name__ == "__main__":
    app()
