"""Why a payload is refused: one named reason for every rule, and the error that carries it.

The dead-letter store, the metrics and the logs count and show these names; docs/protocol.md
lists them with the rule each stands for.
"""

from __future__ import annotations

from enum import StrEnum

from warmcard.errors import WarmcardError


class Reason(StrEnum):
    """Why a payload was rejected; the dead-letter store and metrics count by these names."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    DUPLICATE_KEY = "duplicate_key"
    NON_FINITE_NUMBER = "non_finite_number"
    TOO_DEEP = "too_deep"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_VERSION = "unknown_version"
    SCHEMA = "schema"
    BAD_TOPIC = "bad_topic"
    DEVICE_MISMATCH = "device_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    CLOCK_PAST = "clock_past"
    CLOCK_FUTURE = "clock_future"
    RETAINED = "retained"
    QOS0 = "qos0"
    CONFLICT = "conflict"
    BOM = "bom"
    HUGE_NUMBER = "huge_number"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    BAD_TS = "bad_ts"
    INCONSISTENT = "inconsistent"


MAX_DETAIL_CHARS = 300


class InvalidPayload(WarmcardError):
    """A payload that breaks the contract; `reason` names the rule.

    `detail` is at most MAX_DETAIL_CHARS printable characters (control characters and lone
    surrogates escaped), so it is safe to log, store and encode as UTF-8.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        if not detail.isprintable():
            detail = ascii(detail)[1:-1]
        detail = detail[:MAX_DETAIL_CHARS]
        # Both in args, so the exception pickles (worker processes) and str() stays readable.
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"
