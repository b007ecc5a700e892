"""The gateway's own commands, added to `warmcard` by warmcard.command.cli: doctor, read-cards,
emulate-pn532. The kiosk's commands are in kiosk.cli."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from firmware_gateway import doctor
from firmware_gateway.doctor import ExtraCheck
from firmware_gateway.pins import Pattern
from firmware_gateway.readers.cli import register_reader_commands


def register(
    app: typer.Typer,
    *,
    doctor_patterns: Sequence[Pattern] = (),
    doctor_checks: Sequence[ExtraCheck] = (),
) -> None:
    """Add the gateway's commands to the `warmcard` app.

    `doctor_patterns` are what `warmcard doctor` plays on the LEDs and buzzer, `doctor_checks`
    what else it checks (the screen and speaker): the kiosk's.
    """
    doctor.register(app, doctor_patterns, doctor_checks)
    register_reader_commands(app)
