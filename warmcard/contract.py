"""The wire contract between kiosks and the cloud: topics, payloads, validation.

Both sides import this module and nothing else of each other. docs/protocol.md describes it.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from warmcard.errors import WarmcardError

SCHEMA_VERSION = 1
TOPIC_ROOT = "warmcard/v1/devices"
EVENTS_FILTER = f"{TOPIC_ROOT}/+/events"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
MAX_PAYLOAD_BYTES = 4096
MAX_NESTING = 4
MAX_SEQ = 2**53 - 1  # exact in JSON numbers and in InfluxDB int64 fields

# Event times outside this window are wrong clocks, not real taps.
EARLIEST_EVENT = datetime(2024, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW_S = 300

DEVICE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
SITE_ID_RE = DEVICE_ID_RE
PERSON_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# ISO 14443A UIDs are 4, 7 or 10 bytes; canonical form is upper-case hex without separators.
CARD_UID_RE = re.compile(r"(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})")
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
EVENT_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class Kind(StrEnum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    MEAL = "meal"
    MEAL_REPEAT = "meal_repeat"
    UNKNOWN_CARD = "unknown_card"


MEAL_KINDS = frozenset({Kind.MEAL, Kind.MEAL_REPEAT})


class MealPeriod(StrEnum):
    BREAKFAST = "breakfast"
    LUNCH = "lunch"
    DINNER = "dinner"


class Mode(StrEnum):
    ENTRANCE = "entrance"
    CANTEEN = "canteen"


class ReaderState(StrEnum):
    OK = "ok"
    FAULT = "fault"
    ABSENT = "absent"


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


class InvalidPayload(WarmcardError):
    """A payload that breaks the contract; `reason` names the rule."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------- topics


def events_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/events"


def status_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/status"


def config_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/config"


def roster_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/roster"


def shared_subscription(group: str, topic_filter: str) -> str:
    """MQTT 5 shared subscription: the broker spreads messages across the group's members."""
    return f"$share/{group}/{topic_filter}"


def device_from_topic(topic: str) -> str:
    """The device id in `warmcard/v1/devices/<id>/<leaf>`; raises InvalidPayload otherwise."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != TOPIC_ROOT or not DEVICE_ID_RE.fullmatch(parts[3]):
        raise InvalidPayload(Reason.BAD_TOPIC, f"not a device topic: {topic[:200]!r}")
    return parts[3]


# ---------------------------------------------------------------------------- time and ids


def format_ts(ts_us: int) -> str:
    """Microseconds since the epoch as the wire's UTC time: 2026-11-29T06:15:22.123456Z."""
    dt = datetime.fromtimestamp(ts_us // 1_000_000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_us % 1_000_000:06d}Z"


def parse_ts(text: str) -> int:
    """The wire's UTC timestamp as microseconds since the epoch."""
    if not TS_RE.fullmatch(text):
        raise ValueError(
            "timestamp must be UTC ISO 8601 with 6 fraction digits, "
            "e.g. 2026-11-29T06:15:22.123456Z"
        )
    # fromisoformat is the C parser (strptime is ~10x slower and this runs per event);
    # TS_RE already fixed the shape, fromisoformat checks the ranges.
    dt = datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + int(text[20:26])


def new_event_id(ts_us: int) -> str:
    """A UUIDv7 (RFC 9562): the event time in its first 48 bits, so ids sort by time."""
    ms = ts_us // 1000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 68) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return str(uuid.UUID(int=value))


def now_us() -> int:
    return time.time_ns() // 1000


# ---------------------------------------------------------------------------- payloads


M = TypeVar("M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TapEvent(_Wire):
    """One tap, decided at the kiosk. Carries no names, only a pseudonymous person id."""

    v: Literal[1] = 1
    event_id: str = Field(pattern=EVENT_ID_RE.pattern)
    device_id: str = Field(pattern=DEVICE_ID_RE.pattern)
    seq: StrictInt = Field(ge=1, le=MAX_SEQ)
    ts: str
    card_uid: str = Field(pattern=CARD_UID_RE.pattern)
    kind: Kind
    meal_period: MealPeriod | None = None
    person_id: str | None = Field(default=None, pattern=PERSON_ID_RE.pattern)
    auto: StrictBool = False  # a check_out the kiosk made itself at closing time
    clock_synced: StrictBool = True  # False when the kiosk had no NTP sync at tap time

    @field_validator("ts")
    @classmethod
    def _ts_format(cls, value: str) -> str:
        parse_ts(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TapEvent:
        if (self.kind in MEAL_KINDS) != (self.meal_period is not None):
            raise ValueError("meal_period is required for meal kinds and forbidden otherwise")
        if (self.kind == Kind.UNKNOWN_CARD) != (self.person_id is None):
            raise ValueError("person_id is required, except for unknown_card")
        if self.auto and self.kind != Kind.CHECK_OUT:
            raise ValueError("auto is only for check_out")
        return self

    @property
    def ts_us(self) -> int:
        return parse_ts(self.ts)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_defaults=False).encode()


class DeviceStatus(_Wire):
    """Heartbeat on the retained status topic; the last-will sets state to offline."""

    v: Literal[1] = 1
    device_id: str = Field(pattern=DEVICE_ID_RE.pattern)
    state: Literal["online", "offline"]
    ts: str | None = None
    uptime_s: float | None = None
    outbox_depth: int | None = None
    last_seq: int | None = None  # highest seq committed at the kiosk, sent or not
    reader: ReaderState | None = None
    disk_free_bytes: int | None = None
    clock_synced: bool | None = None
    software: str | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class MealWindow(_Wire):
    period: MealPeriod
    start: str = Field(pattern=r"([01]\d|2[0-3]):[0-5]\d")
    end: str = Field(pattern=r"([01]\d|2[0-3]):[0-5]\d")


class DeviceConfig(_Wire):
    """Downlink, retained: what the cloud tells one kiosk about its site and mode."""

    v: Literal[1] = 1
    device_id: str = Field(pattern=DEVICE_ID_RE.pattern)
    site_id: str = Field(pattern=SITE_ID_RE.pattern)
    mode: Mode
    tz: str = "Asia/Shanghai"
    opening: str = Field(default="07:00", pattern=r"([01]\d|2[0-3]):[0-5]\d")
    closing: str = Field(default="18:00", pattern=r"([01]\d|2[0-3]):[0-5]\d")
    debounce_s: float = Field(default=10.0, ge=0, le=3600)
    meals: list[MealWindow] = Field(default_factory=list)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class RosterEntry(_Wire):
    card_uid: str = Field(pattern=CARD_UID_RE.pattern)
    person_id: str = Field(pattern=PERSON_ID_RE.pattern)
    display_name: str = Field(max_length=64)


class Roster(_Wire):
    """Downlink, retained: the site's cards, with the names its screen shows. Nothing more."""

    v: Literal[1] = 1
    site_id: str = Field(pattern=SITE_ID_RE.pattern)
    version: str
    entries: list[RosterEntry]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# ---------------------------------------------------------------------------- decoding


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidPayload(Reason.DUPLICATE_KEY, f"key {key[:50]!r} appears twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> float:
    raise InvalidPayload(Reason.NON_FINITE_NUMBER, f"{name} is not a JSON number")


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def decode_json(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Strict JSON object decoding shared by every payload type."""
    if not payload:
        raise InvalidPayload(Reason.EMPTY, "empty payload")
    if len(payload) > limit:
        raise InvalidPayload(Reason.TOO_LARGE, f"{len(payload)} bytes, limit {limit}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(Reason.NOT_UTF8, str(exc)) from None
    try:
        data = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except RecursionError:
        raise InvalidPayload(Reason.TOO_DEEP, "nesting too deep") from None
    except json.JSONDecodeError as exc:
        raise InvalidPayload(Reason.INVALID_JSON, str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidPayload(Reason.NOT_AN_OBJECT, f"top level is {type(data).__name__}")
    if _depth(data) > MAX_NESTING:
        raise InvalidPayload(Reason.TOO_DEEP, f"nesting deeper than {MAX_NESTING}")
    for value in data.values():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidPayload(Reason.NON_FINITE_NUMBER, "non-finite number")
    return data


def _schema_error(exc: ValidationError) -> InvalidPayload:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return InvalidPayload(Reason.SCHEMA, f"{where}: {first['msg']}")


def parse_event(payload: bytes, topic: str, *, received_us: int | None = None) -> TapEvent:
    """Validate one message from an events topic; raises InvalidPayload naming the broken rule."""
    topic_device = device_from_topic(topic)
    data = decode_json(payload)
    if data.get("v") != SCHEMA_VERSION:
        raise InvalidPayload(Reason.UNKNOWN_VERSION, f"schema version {data.get('v')!r}")
    try:
        event = TapEvent.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc) from None
    if event.device_id != topic_device:
        raise InvalidPayload(
            Reason.DEVICE_MISMATCH, f"payload says {event.device_id}, topic says {topic_device}"
        )
    ts_us = event.ts_us
    if ts_us < int(EARLIEST_EVENT.timestamp()) * 1_000_000:
        raise InvalidPayload(Reason.CLOCK_PAST, f"event time {event.ts} is before 2024")
    now = now_us() if received_us is None else received_us
    if ts_us > now + MAX_FUTURE_SKEW_S * 1_000_000:
        raise InvalidPayload(Reason.CLOCK_FUTURE, f"event time {event.ts} is in the future")
    return event


def parse_model(model: type[M], payload: bytes) -> M:
    """Validate a status, config or roster payload."""
    data = decode_json(payload, limit=1_048_576 if model is Roster else MAX_PAYLOAD_BYTES)
    if data.get("v") != SCHEMA_VERSION:
        raise InvalidPayload(Reason.UNKNOWN_VERSION, f"schema version {data.get('v')!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc) from None
