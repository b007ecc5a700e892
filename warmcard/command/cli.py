"""The `warmcard` command. Each package adds its own commands through its cli module."""

from __future__ import annotations

import logging
import sys

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
    # One line per HTTP request to InfluxDB would drown everything else at INFO.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)


# Commands that run on the kiosk's Raspberry Pi. Started as one of these, `warmcard` loads only
# the Pi side's commands: the cloud side's imports (FastAPI, cryptography, argon2, ...) would
# otherwise cost the kiosk process ~20 MB of its 60 MB memory budget.
KIOSK_COMMANDS = frozenset({"kiosk", "doctor", "simulate", "voice", "emulate-pn532", "read-cards"})


def _register(argv: list[str]) -> None:
    from firmware_gateway import cli as gateway_cli
    from kiosk import cli as kiosk_cli
    from kiosk.doctor_checks import KIOSK_CHECKS
    from kiosk.gpio_feedback import PATTERNS

    gateway_cli.register(app, doctor_patterns=tuple(PATTERNS.values()), doctor_checks=KIOSK_CHECKS)
    kiosk_cli.register(app)
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    if command in KIOSK_COMMANDS:
        return

    from cloud_ingest import cli as cloud_cli
    from warmcard.command import demo, provision_cli

    cloud_cli.register(app)
    demo.register(app)
    provision_cli.register(app)


_register(sys.argv)

if __name__ == "__main__":
    app()
