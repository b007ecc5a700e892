"""Errors of the gateway. Library errors (serial, sqlite, MQTT) are translated into these."""

from warmcard.errors import WarmcardError


class GatewayError(WarmcardError):
    """Root of the gateway's errors."""


class ReaderError(GatewayError):
    """The reader is absent, unplugged or not answering; drivers retry by themselves."""


class UnknownReaderSpec(GatewayError):
    """The reader string in config names no driver."""


class OutboxFull(GatewayError):
    """The outbox disk is (nearly) full: taps are refused, visibly, rather than lost."""


class OutboxError(GatewayError):
    """The outbox database failed; the tap was not recorded."""
