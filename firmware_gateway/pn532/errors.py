"""Errors of the PN532 stack; all are ReaderError, so the reader driver recovers from them."""

from firmware_gateway.errors import ReaderError


class PN532Error(ReaderError):
    """Root of the PN532 stack's errors."""


class FrameError(PN532Error):
    """Bytes on the wire that are not a valid frame (checksum, length, postamble)."""


class NoAck(PN532Error):
    """The chip did not acknowledge a command: it is asleep, unpowered, unplugged or wedged."""


class ResponseTimeout(PN532Error):
    """The chip acknowledged a command but sent no response in time."""


class ChipError(PN532Error):
    """The chip answered with an error frame or an error status byte."""


class PortError(PN532Error):
    """The serial port cannot be opened or has gone away (USB adapter unplugged)."""
