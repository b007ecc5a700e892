"""Errors of the kiosk package."""

from warmcard.errors import WarmcardError


class KioskError(WarmcardError):
    """Root of the kiosk's errors."""


class SimulationError(KioskError):
    """The simulated kiosks could not be set up (no config or roster from the broker in time)."""
