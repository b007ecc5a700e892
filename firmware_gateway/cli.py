"""The gateway's own commands, added to `warmcard` by warmcard.command.cli: doctor, read-cards,
emulate-pn532. The kiosk's commands are in kiosk.cli."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from firmware_gateway import doctor
from firmware_gateway.pins import Pattern
from firmware_gateway.readers.cli import register_reader_commands


def register(app: typer.Typer, *, doctor_patterns: Sequence[Pattern] = ()) -> None:
    """Add the gateway's commands to the `warmcard` app.

    `doctor_patterns` are what `warmcard doctor` plays on the LEDs and buzzer: the kiosk's.
    """
    doctor.register(app, doctor_patterns)
    register_reader_commands(app)
