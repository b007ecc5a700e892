"""Errors of the kiosk package."""

from warmcard.errors import WarmcardError


class KioskError(WarmcardError):
    """Root of the kiosk's errors."""


class SimulationError(KioskError):
    """The simulated kiosks could not be set up (no config or roster from the broker in time)."""


class ScreenError(KioskError):
    """The on-site screen's local web server could not start."""


class VoiceError(KioskError):
    """Voice clips could not be rendered or played."""
