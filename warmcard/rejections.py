"""Why a payload is refused: one named reason for every rule, and the error that carries it.

The dead-letter store, the metrics and the logs count and show these names; docs/protocol.md
lists them with the rule each stands for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ValidationError

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


def schema_error(exc: ValidationError) -> InvalidPayload:
    """The most telling of pydantic's errors, as one named reason."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)

    def where(error: Any) -> str:
        return ".".join(str(p) for p in error["loc"]) or "payload"

    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    # Precedence: a smuggled field (a name?) first, then missing fields, then the timestamp.
    for kind, reason in (
        ("extra_forbidden", Reason.UNKNOWN_FIELD),
        ("missing", Reason.MISSING_FIELD),
    ):
        for error in errors:
            if error["type"] == kind:
                return InvalidPayload(reason, f"{where(error)!r:.60}: {error['msg']}{more}")
    for error in errors:
        if error["loc"][:1] == ("ts",):
            return InvalidPayload(Reason.BAD_TS, f"ts: {error['msg']}{more}")
    first = errors[0]
    if not first["loc"] and first["type"] == "value_error":  # a model validator's rule
        return InvalidPayload(Reason.INCONSISTENT, first["msg"].removeprefix("Value error, "))
    return InvalidPayload(Reason.SCHEMA, f"{where(first)}: {first['msg']}{more}")
